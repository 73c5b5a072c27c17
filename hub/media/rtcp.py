"""RTCP compound packets (RFC 3550 section 6): SR, RR and BYE, others kept raw.

An RTSP server needs RTCP for two things: sender reports map a source's RTP
timestamps to wall-clock time (NTP), and its own sender reports let players
sync audio with video. Receiver reports and SDES are accepted and ignored by
callers; unknown packet types survive as :class:`RtcpRaw`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Union

from hub.errors import ProtocolError

__all__ = [
    "RTCP_SR", "RTCP_RR", "RTCP_SDES", "RTCP_BYE", "RTCP_APP",
    "ReportBlock", "SenderReport", "ReceiverReport", "Bye", "RtcpRaw", "RtcpPacket",
    "parse_compound", "unix_to_ntp", "ntp_to_unix", "ntp_middle32", "MAX_COMPOUND_PARTS",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

#: Most packets in one compound packet (a sender's has a few: SR or RR, SDES,
#: feedback). Each is an object parsed; a 64 KiB datagram of empty 4-byte
#: parts was 16,383 of them, ~24 ms of the loop's time for one datagram.
MAX_COMPOUND_PARTS = 64

#: Seconds between the NTP epoch (1900) and the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800

_COMMON = struct.Struct(">BBH")
_SR_INFO = struct.Struct(">IQIII")  # ssrc, ntp, rtp ts, packets, octets
_BLOCK = struct.Struct(">IIIIII")


def unix_to_ntp(seconds: float) -> int:
    """Unix time in seconds to the 64-bit NTP format (32.32 fixed point)."""
    whole = int(seconds)
    frac = int(round((seconds - whole) * (1 << 32)))
    if frac >= 1 << 32:
        whole, frac = whole + 1, frac - (1 << 32)
    return (((whole + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | frac


def ntp_to_unix(ntp: int) -> float:
    """64-bit NTP to Unix seconds (inverse of :func:`unix_to_ntp`)."""
    return (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP time, as echoed in a report block's LSR."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(slots=True)
class ReportBlock:
    """Reception report about one source (24 bytes)."""

    ssrc: int
    fraction_lost: int = 0
    packets_lost: int = 0  # signed 24-bit cumulative count
    highest_seq: int = 0  # extended highest sequence number received
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data: bytes | memoryview, pos: int) -> ReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost_word = ((self.fraction_lost & 0xFF) << 24) | (self.packets_lost & 0xFFFFFF)
        return _BLOCK.pack(self.ssrc, lost_word, self.highest_seq & 0xFFFFFFFF,
                           self.jitter, self.lsr, self.dlsr)


def _header(pt: int, count: int, body_len: int) -> bytes:
    if count > 31:
        raise ValueError("RTCP: at most 31 items per packet")
    return _COMMON.pack(0x80 | count, pt, body_len // 4)


def _parse_blocks(body: memoryview, pos: int, count: int) -> list[ReportBlock]:
    if pos + 24 * count > len(body):
        raise ProtocolError("RTCP: report blocks past end of packet")
    return [ReportBlock.parse(body, pos + 24 * i) for i in range(count)]


@dataclass(slots=True)
class SenderReport:
    """SR: the sender's NTP/RTP timestamp pair and its counters."""

    ssrc: int
    ntp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)

    @classmethod
    def _parse(cls, count: int, body: memoryview) -> SenderReport:
        if len(body) < 24:
            raise ProtocolError("RTCP: sender report too short")
        ssrc, ntp, ts, packets, octets = _SR_INFO.unpack_from(body, 0)
        return cls(ssrc, ntp, ts, packets, octets, _parse_blocks(body, 24, count))

    def __bytes__(self) -> bytes:
        blocks = b"".join(bytes(r) for r in self.reports)
        info = _SR_INFO.pack(self.ssrc, self.ntp, self.rtp_timestamp & 0xFFFFFFFF,
                             self.packet_count & 0xFFFFFFFF, self.octet_count & 0xFFFFFFFF)
        return _header(RTCP_SR, len(self.reports), 24 + len(blocks)) + info + blocks


@dataclass(slots=True)
class ReceiverReport:
    """RR: reception reports from a receiver that does not send."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    @classmethod
    def _parse(cls, count: int, body: memoryview) -> ReceiverReport:
        if len(body) < 4:
            raise ProtocolError("RTCP: receiver report too short")
        return cls(int.from_bytes(body[0:4], "big"), _parse_blocks(body, 4, count))

    def __bytes__(self) -> bytes:
        blocks = b"".join(bytes(r) for r in self.reports)
        return (_header(RTCP_RR, len(self.reports), 4 + len(blocks))
                + self.ssrc.to_bytes(4, "big") + blocks)


@dataclass(slots=True)
class Bye:
    """BYE: sources leaving, with an optional reason."""

    sources: list[int] = field(default_factory=list)
    reason: bytes = b""

    @classmethod
    def _parse(cls, count: int, body: memoryview) -> Bye:
        if len(body) < 4 * count:
            raise ProtocolError("RTCP: BYE source list past end of packet")
        sources = list(struct.unpack_from(f">{count}I", body, 0))
        reason = b""
        pos = 4 * count
        if pos < len(body):
            n = body[pos]
            if pos + 1 + n > len(body):
                raise ProtocolError("RTCP: BYE reason past end of packet")
            reason = bytes(body[pos + 1:pos + 1 + n])
        return cls(sources, reason)

    def __bytes__(self) -> bytes:
        if len(self.reason) > 255:
            raise ValueError("BYE reason longer than 255 bytes")
        body = b"".join(s.to_bytes(4, "big") for s in self.sources)
        if self.reason:
            tail = bytes((len(self.reason),)) + self.reason
            body += tail + bytes(-len(tail) % 4)
        return _header(RTCP_BYE, len(self.sources), len(body)) + body


@dataclass(slots=True)
class RtcpRaw:
    """Any other packet type (SDES, APP, feedback): header fields and body."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(self.packet_type, self.count, len(self.body)) + self.body


RtcpPacket = Union[SenderReport, ReceiverReport, Bye, RtcpRaw]


def parse_compound(data: bytes | bytearray | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP packet into its parts; ProtocolError on garbage.

    Padding (P bit) is only legal on the last part; its bytes are removed
    from that part's body.
    """
    mv = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    size = len(mv)
    if size < 4:
        raise ProtocolError("RTCP: packet shorter than a header")
    out: list[RtcpPacket] = []
    pos = 0
    while pos < size:
        if len(out) >= MAX_COMPOUND_PARTS:
            raise ProtocolError(f"RTCP: more than {MAX_COMPOUND_PARTS} packets in a compound packet")
        if size - pos < 4:
            raise ProtocolError("RTCP: trailing bytes after last packet")
        b0, pt, words = _COMMON.unpack_from(mv, pos)
        if b0 >> 6 != 2:
            raise ProtocolError(f"RTCP: version {b0 >> 6}")
        end = pos + 4 + 4 * words
        if end > size:
            raise ProtocolError("RTCP: length past end of packet")
        body = mv[pos + 4:end]
        if b0 & 0x20:
            if end != size or not len(body):
                raise ProtocolError("RTCP: padding on a non-final packet")
            pad = body[-1]
            if pad == 0 or pad > len(body):
                raise ProtocolError(f"RTCP: bad padding length {pad}")
            body = body[:len(body) - pad]
        count = b0 & 0x1F
        part: RtcpPacket
        if pt == RTCP_SR:
            part = SenderReport._parse(count, body)
        elif pt == RTCP_RR:
            part = ReceiverReport._parse(count, body)
        elif pt == RTCP_BYE:
            part = Bye._parse(count, body)
        elif 192 <= pt <= 223:
            part = RtcpRaw(pt, count, bytes(body))
        else:
            raise ProtocolError(f"RTCP: packet type {pt}")
        out.append(part)
        pos = end
    return out
