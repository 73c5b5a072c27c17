"""RTP fixed header (RFC 3550 section 5.1) as a dataclass, plus a fast writer.

``RtpPacket.parse`` is used on the ingest path (one call per packet from a
publisher or a pulled source); ``write_header_into`` is the packetisers' fast
path, a single ``struct.pack_into`` into a preallocated bytearray.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from hub.errors import ProtocolError

__all__ = ["RTP_VERSION", "RTP_HEADER_SIZE", "RtpPacket", "write_header_into", "is_rtcp"]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

_HEADER = struct.Struct(">BBHII")
_EXT_HEADER = struct.Struct(">HH")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``payload`` excludes padding; ``padding`` is its size.

    ``extension_profile`` is None when the X bit is clear; otherwise
    ``extension`` holds the extension data words (without the 4-byte
    profile/length header).
    """

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    marker: bool = False
    payload: bytes = b""
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0
    version: int = RTP_VERSION

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one RTP packet; ProtocolError on anything malformed."""
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise ProtocolError(f"RTP: packet of {size} bytes is shorter than the header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise ProtocolError(f"RTP: version {version}")
        cc = b0 & 0x0F
        pos = RTP_HEADER_SIZE + 4 * cc
        if pos > size:
            raise ProtocolError("RTP: CSRC list past end of packet")
        csrc = list(struct.unpack_from(f">{cc}I", data, RTP_HEADER_SIZE)) if cc else []
        ext_profile: int | None = None
        ext = b""
        if b0 & 0x10:
            if pos + 4 > size:
                raise ProtocolError("RTP: extension header past end of packet")
            ext_profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            if pos + 4 * words > size:
                raise ProtocolError("RTP: extension past end of packet")
            ext = bytes(data[pos:pos + 4 * words])
            pos += 4 * words
        end = size
        padding = 0
        if b0 & 0x20:
            padding = data[size - 1]
            if padding == 0 or pos + padding > size:
                raise ProtocolError(f"RTP: bad padding length {padding}")
            end -= padding
        return cls(
            payload_type=b1 & 0x7F, sequence_number=seq, timestamp=ts, ssrc=ssrc,
            marker=bool(b1 & 0x80), payload=bytes(data[pos:end]), csrc=csrc,
            extension_profile=ext_profile, extension=ext, padding=padding, version=version,
        )

    def __bytes__(self) -> bytes:
        """Serialise; padding (if any) is zeros ending in the padding count."""
        if self.extension_profile is not None and len(self.extension) % 4:
            raise ValueError("RTP header extension must be a whole number of 32-bit words")
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRCs")
        b0 = (self.version << 6) | len(self.csrc)
        if self.padding:
            b0 |= 0x20
        if self.extension_profile is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        parts: list[bytes] = [_HEADER.pack(b0, b1, self.sequence_number & 0xFFFF,
                                           self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)]
        if self.csrc:
            parts.append(struct.pack(f">{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_EXT_HEADER.pack(self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def write_header_into(buf: bytearray | memoryview, offset: int, marker: bool, pt: int,
                      seq: int, ts: int, ssrc: int) -> None:
    """Write a 12-byte RTP header (no CSRC, no extension, no padding) at ``offset``.

    ``seq`` and ``ts`` are masked to their wire widths here so callers can
    keep counting past the wrap.
    """
    _HEADER.pack_into(buf, offset, 0x80, (0x80 if marker else 0) | pt,
                      seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """True for an RTCP packet multiplexed with RTP (RFC 5761: PT 192..223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223
