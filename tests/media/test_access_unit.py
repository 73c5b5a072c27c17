"""AVCC and Annex B layouts, byte-exact."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.access_unit import annexb_split, annexb_to_avcc, avcc_join, avcc_split, avcc_to_annexb

AVCC = bytes.fromhex("00000002 6742 00000003 68ce3c 00000001 65")


def test_avcc_join_and_split() -> None:
    assert avcc_join([b"\x67\x42", bytearray(b"\x68\xce\x3c"), memoryview(b"\x65")]) == AVCC
    assert [bytes(n) for n in avcc_split(AVCC)] == [b"\x67\x42", b"\x68\xce\x3c", b"\x65"]
    assert avcc_join([]) == b"" and avcc_split(b"") == []


@pytest.mark.parametrize("bad", [b"\x00\x00\x00", bytes.fromhex("00000003 6742")])
def test_avcc_split_rejects_truncation(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        avcc_split(bad)


def test_annexb_three_and_four_byte_start_codes() -> None:
    data = bytes.fromhex("ff 00000001 6742 000001 68ce3c 00 000001 65 0000")
    assert [bytes(n) for n in annexb_split(data)] == [b"\x67\x42", b"\x68\xce\x3c", b"\x65"]
    assert annexb_to_avcc(data) == AVCC
    assert avcc_to_annexb(AVCC) == bytes.fromhex("00000001 6742 00000001 68ce3c 00000001 65")
    assert annexb_split(b"\x00\x00\x01\x00\x00\x01") == [] and annexb_split(b"\x65") == []


@given(st.lists(st.binary(min_size=1, max_size=20).filter(lambda b: b[-1] != 0), max_size=5))
def test_round_trips(nals: list[bytes]) -> None:
    from hub.media.bits import escape_rbsp
    escaped = [b"\x41" + escape_rbsp(n) for n in nals]
    escaped = [n for n in escaped if n[-1] != 0]
    avcc = avcc_join(escaped)
    assert [bytes(n) for n in avcc_split(avcc)] == escaped
    assert annexb_to_avcc(avcc_to_annexb(avcc)) == avcc
