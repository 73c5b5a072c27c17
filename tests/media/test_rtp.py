"""RTP header: hand-built packets, every field asserted, byte-identical re-serialisation."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.rtp import RtpPacket, is_rtcp, write_header_into

SIMPLE = bytes.fromhex("80e0 1234 0001e240 deadbeef") + b"\x65\x88\x84"
FULL = (bytes.fromhex("b2 61 ffff ffffffff 00000001")  # V2 P X CC=2, PT 97, no marker
        + bytes.fromhex("00000002 00000003")  # CSRCs
        + bytes.fromhex("bede 0001 01020304")  # extension: profile, 1 word
        + b"hi" + b"\x00\x00\x03")  # payload + 3 bytes padding


def test_parse_simple() -> None:
    p = RtpPacket.parse(SIMPLE)
    assert (p.version, p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (
        2, True, 96, 0x1234, 123456, 0xDEADBEEF)
    assert p.csrc == [] and p.extension_profile is None and p.extension == b"" and p.padding == 0
    assert p.payload == b"\x65\x88\x84"
    assert bytes(p) == SIMPLE


def test_parse_csrc_extension_padding() -> None:
    p = RtpPacket.parse(FULL)
    assert (p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (
        False, 97, 65535, 0xFFFFFFFF, 1)
    assert p.csrc == [2, 3]
    assert p.extension_profile == 0xBEDE and p.extension == b"\x01\x02\x03\x04"
    assert p.padding == 3 and p.payload == b"hi"
    assert bytes(p) == FULL


def test_parse_accepts_memoryview_and_trailing_is_payload() -> None:
    p = RtpPacket.parse(memoryview(SIMPLE + b"\x01"))
    assert p.payload == b"\x65\x88\x84\x01"


@pytest.mark.parametrize("bad", [
    b"",
    SIMPLE[:11],
    b"\x40" + SIMPLE[1:],  # version 1
    bytes.fromhex("82e0 1234 0001e240 deadbeef 00000001"),  # CC=2, one CSRC present
    bytes.fromhex("90e0 1234 0001e240 deadbeef bede"),  # extension header truncated
    bytes.fromhex("90e0 1234 0001e240 deadbeef bede0002 00000000"),  # ext words missing
    bytes.fromhex("a0e0 1234 0001e240 deadbeef 0000"),  # padding 0
    bytes.fromhex("a0e0 1234 0001e240 deadbeef 0009"),  # padding beyond payload
])
def test_garbage_raises_protocol_error(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        RtpPacket.parse(bad)


def test_padding_equal_to_payload_length_is_empty_payload() -> None:
    p = RtpPacket.parse(bytes.fromhex("a0e0 1234 0001e240 deadbeef 000003"))
    assert p.payload == b"" and p.padding == 3


def test_write_header_into() -> None:
    buf = bytearray(b"\xaa" * 16)
    write_header_into(buf, 2, True, 96, 0x1_1234, 0x1_0001_E240, 0xDEADBEEF)
    assert bytes(buf) == b"\xaa\xaa" + SIMPLE[:12] + b"\xaa\xaa"
    write_header_into(buf, 0, False, 8, 1, 2, 3)
    assert bytes(buf[:12]) == bytes.fromhex("8008 0001 00000002 00000003")


def test_is_rtcp() -> None:
    assert is_rtcp(bytes.fromhex("80c8 0006"))
    assert not is_rtcp(SIMPLE)
    assert not is_rtcp(b"\x80")


@given(st.binary(max_size=80))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except ProtocolError:
        return
    again = RtpPacket.parse(bytes(p))
    assert again == p


@given(st.builds(RtpPacket, payload_type=st.integers(0, 127), sequence_number=st.integers(0, 65535),
                 timestamp=st.integers(0, 2**32 - 1), ssrc=st.integers(0, 2**32 - 1),
                 marker=st.booleans(), payload=st.binary(max_size=20),
                 csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15),
                 padding=st.integers(0, 255)))
def test_serialise_parse_round_trip(p: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(p)) == p
