"""RTCP compound packets: hand-built SR/RR/SDES/BYE, every field asserted."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.rtcp import (Bye, ReceiverReport, ReportBlock, RtcpRaw, SenderReport, ntp_middle32,
                            ntp_to_unix, parse_compound, unix_to_ntp)

SR = bytes.fromhex(
    "81c8 000c"  # V2, RC=1, PT=200, length 12 words
    "11223344"  # ssrc
    "e8f7a1b2 80000000"  # ntp: seconds, .5
    "00015f90"  # rtp ts 90000
    "0000000a 000003e8"  # 10 packets, 1000 octets
    "55667788 05fffffe 00010010 00000020 a1b28000 00010000")  # block: lost -2
RR = bytes.fromhex("80c9 0001 99999999")
SDES = bytes.fromhex("81ca 0003 11223344 0103 6869 00000000")
BYE = bytes.fromhex("81cb 0002 11223344 03 627965")


def test_sender_report_fields_and_bytes() -> None:
    (sr,) = parse_compound(SR)
    assert isinstance(sr, SenderReport)
    assert sr.ssrc == 0x11223344 and sr.ntp == 0xE8F7A1B2_80000000
    assert (sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (90000, 10, 1000)
    assert sr.reports == [ReportBlock(0x55667788, 5, -2, 0x10010, 0x20, 0xA1B28000, 0x10000)]
    assert bytes(sr) == SR


def test_compound_rr_sdes_bye() -> None:
    data = RR + SDES + BYE
    rr, sdes, bye = parse_compound(data)
    assert rr == ReceiverReport(0x99999999, [])
    assert isinstance(sdes, RtcpRaw) and (sdes.packet_type, sdes.count) == (202, 1)
    assert sdes.body == bytes.fromhex("11223344 0103 6869 00000000")
    assert bye == Bye([0x11223344], b"bye")
    assert b"".join(bytes(p) for p in (rr, sdes, bye)) == data


def test_bye_without_reason_and_with_padding() -> None:
    assert bytes(Bye([1, 2])) == bytes.fromhex("82cb 0002 00000001 00000002")
    padded = bytes.fromhex("a1cb 0002 00000007 00000004")
    assert parse_compound(padded) == [Bye([7])]


def test_ntp_helpers() -> None:
    assert unix_to_ntp(0.0) == 2_208_988_800 << 32
    assert unix_to_ntp(1.5) == ((2_208_988_801 << 32) | 0x80000000)
    assert ntp_to_unix(unix_to_ntp(1_700_000_000.25)) == 1_700_000_000.25
    assert ntp_middle32(0xE8F7A1B2_80000000) == 0xA1B28000


@pytest.mark.parametrize("bad", [
    b"", b"\x80\xc8\x00",
    bytes.fromhex("40c9 0001 99999999"),  # version 1
    bytes.fromhex("80c9 0002 99999999"),  # length past end
    bytes.fromhex("81c9 0001 99999999"),  # RC=1 without a block
    bytes.fromhex("80c8 0001 99999999"),  # SR too short
    bytes.fromhex("a0c9 0001 99999999") + RR,  # padding on non-final part
    bytes.fromhex("a0c9 0001 00000009"),  # padding longer than body
    bytes.fromhex("80c9 0001 99999999 80"),  # trailing byte
    bytes.fromhex("8060 0001 99999999"),  # not an RTCP type
    bytes.fromhex("82cb 0001 00000001"),  # BYE count 2, one source
    bytes.fromhex("81cb 0002 00000001 09616200"),  # BYE reason past end
])
def test_garbage_raises(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_compound(bad)


@given(st.binary(max_size=80))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        parse_compound(data)
    except ProtocolError:
        pass


def test_a_compound_packet_of_too_many_parts_is_refused() -> None:
    """16,383 empty APP packets fill one 64 KiB datagram: each was parsed
    into an object, ~24 ms of the shard's loop per datagram (64 of them
    read per wake-up). Past MAX_COMPOUND_PARTS the datagram is garbage."""
    from hub.media.rtcp import MAX_COMPOUND_PARTS, parse_compound

    app = bytes((0x80, 204, 0, 0))
    assert len(parse_compound(app * MAX_COMPOUND_PARTS)) == MAX_COMPOUND_PARTS
    with pytest.raises(ProtocolError):
        parse_compound(app * (MAX_COMPOUND_PARTS + 1))
    with pytest.raises(ProtocolError):
        parse_compound(app * (65532 // 4))
