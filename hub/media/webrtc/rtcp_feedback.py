"""RTCP feedback messages (RFC 4585, RFC 5104) a WebRTC peer sends us.

Generic NACK (RTPFB, FMT 1) asks for lost packets; PLI (PSFB, FMT 1) and FIR
(PSFB, FMT 4) ask for a keyframe. They arrive as :class:`RtcpRaw` parts of a
compound packet (see :mod:`hub.media.rtcp`); these helpers read their bodies
and build the PLI a receiver (our WHIP side) sends.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hub.errors import ProtocolError

__all__ = ["RTCP_RTPFB", "RTCP_PSFB", "FMT_NACK", "FMT_PLI", "FMT_FIR", "Nack", "parse_nack",
           "media_ssrc", "pli", "fir_ssrcs", "MAX_NACKED"]

RTCP_RTPFB = 205
RTCP_PSFB = 206
FMT_NACK = 1
FMT_PLI = 1
FMT_FIR = 4
#: Most sequence numbers taken from one NACK (each FCI names up to 17); the
#: peer also takes at most this many distinct ones from a whole datagram
#: (all the NACKs of one compound packet) and resends far fewer
#: (`peer.MAX_RESENT_PER_DATAGRAM`).
MAX_NACKED = 256

_TWO = struct.Struct(">II")
_FCI = struct.Struct(">HH")


@dataclass(frozen=True, slots=True)
class Nack:
    sender_ssrc: int
    media_ssrc: int
    lost: tuple[int, ...]


def parse_nack(body: bytes) -> Nack:
    """The lost sequence numbers of a generic NACK body (after the 4-byte header)."""
    if len(body) < 12 or len(body) % 4:
        raise ProtocolError("RTCP NACK: bad length")
    sender, media = _TWO.unpack_from(body, 0)
    lost: list[int] = []
    for pos in range(8, len(body), 4):
        pid, blp = _FCI.unpack_from(body, pos)
        lost.append(pid)
        for bit in range(16):
            if blp & (1 << bit):
                lost.append((pid + bit + 1) & 0xFFFF)
        if len(lost) >= MAX_NACKED:
            break
    return Nack(sender, media, tuple(lost[:MAX_NACKED]))


def media_ssrc(body: bytes) -> int:
    """The media source SSRC of a PLI (or any feedback message body)."""
    if len(body) < 8:
        raise ProtocolError("RTCP feedback: body shorter than two SSRCs")
    return int(_TWO.unpack_from(body, 0)[1])


def fir_ssrcs(body: bytes) -> list[int]:
    """The SSRCs a FIR asks keyframes of (one per 8-byte FCI entry)."""
    if len(body) < 16 or len(body) % 8:
        raise ProtocolError("RTCP FIR: bad length")
    return [int(_TWO.unpack_from(body, pos)[0]) for pos in range(8, len(body), 8)]


def pli(sender_ssrc: int, media: int) -> bytes:
    """A Picture Loss Indication (12 bytes)."""
    return struct.pack(">BBHII", 0x80 | FMT_PLI, RTCP_PSFB, 2, sender_ssrc, media)
