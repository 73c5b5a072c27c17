"""Bit reader and RBSP escaping against hand-computed bit strings."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.bits import BitReader, escape_rbsp, unescape_rbsp


def test_unescape_removes_emulation_prevention() -> None:
    assert unescape_rbsp(b"\x67\x00\x00\x03\x01\x00\x00\x03") == b"\x67\x00\x00\x01\x00\x00"
    assert unescape_rbsp(b"\x00\x00\x03\x03") == b"\x00\x00\x03"
    assert unescape_rbsp(b"abc") == b"abc"
    assert unescape_rbsp(memoryview(b"\x00\x00\x03\x00\x00\x03\x00")) == b"\x00\x00\x00\x00\x00"


def test_escape_inserts_emulation_prevention() -> None:
    assert escape_rbsp(b"\x00\x00\x01") == b"\x00\x00\x03\x01"
    assert escape_rbsp(b"\x00\x00\x00\x00") == b"\x00\x00\x03\x00\x00\x03"
    assert escape_rbsp(b"\x00\x00\x04") == b"\x00\x00\x04"
    assert escape_rbsp(b"\x00\x00") == b"\x00\x00\x03"


@given(st.binary(max_size=64))
def test_escape_round_trip(data: bytes) -> None:
    esc = escape_rbsp(data)
    assert b"\x00\x00\x00" not in esc and b"\x00\x00\x01" not in esc and b"\x00\x00\x02" not in esc
    assert unescape_rbsp(esc) == data


def test_read_bits_and_flags() -> None:
    r = BitReader(b"\xa5\x0f")  # 1010 0101 0000 1111
    assert r.bits_left == 16
    assert r.read_bit() == 1
    assert r.read_bits(3) == 0b010
    assert r.read_flag() is False
    r.skip_bits(3)
    assert r.read_bits(0) == 0
    assert r.read_bits(8) == 0x0F
    assert r.bits_left == 0
    with pytest.raises(ProtocolError):
        r.read_bit()
    with pytest.raises(ProtocolError):
        BitReader(b"\x00").skip_bits(9)


def test_exp_golomb() -> None:
    # ue: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3, 00111 -> 6 ; then se 00101 -> ue 4 -> -2
    # bits: 1 010 011 00100 00111 00101 -> pad with 1s
    bits = "1" "010" "011" "00100" "00111" "00101" "0011"  # last: ue 00110 needs one more
    bits = bits[:-4] + "011"  # se 011 -> ue 2 -> -1
    bits = bits + "1" * (-len(bits) % 8)
    r = BitReader(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    assert [r.read_ue() for _ in range(5)] == [0, 1, 2, 3, 6]
    assert r.read_se() == -2
    assert r.read_se() == -1


def test_se_positive() -> None:
    r = BitReader(bytes([0b01000000]))  # ue 010 = 1 -> se +1
    assert r.read_se() == 1


def test_ue_over_read_and_overlong() -> None:
    with pytest.raises(ProtocolError):
        BitReader(b"\x00").read_ue()
    with pytest.raises(ProtocolError):
        BitReader(b"\x00" * 5 + b"\xff").read_ue()
    with pytest.raises(ProtocolError):
        BitReader(b"\x01").read_ue()  # 7 zeros, a 1, then needs 7 more bits


@given(st.binary(max_size=16))
def test_any_bytes_read_or_protocol_error(data: bytes) -> None:
    r = BitReader(data)
    try:
        while True:
            r.read_ue()
            r.read_se()
    except ProtocolError:
        pass
