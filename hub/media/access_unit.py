"""Access-unit byte layouts shared by every protocol adapter.

Inside the server a video access unit is AVCC: each NAL unit prefixed by its
4-byte big-endian length, in decode order, without AUD NALs. That is exactly
an FLV/MP4 video payload, so the FLV path copies it as is; RTSP splits it back
into NALs and MPEG-TS turns it into Annex B with start codes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

from hub.errors import ProtocolError

__all__ = ["AccessUnit", "DepacketizerStats", "avcc_join", "avcc_ok", "avcc_split", "annexb_split", "avcc_to_annexb",
           "annexb_to_avcc"]

_START4 = b"\x00\x00\x00\x01"
_U32 = struct.Struct(">I")


def avcc_join(nalus: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """Length-prefix each NAL unit and concatenate (one allocation)."""
    total = 0
    for n in nalus:
        total += 4 + len(n)
    out = bytearray(total)
    pos = 0
    for n in nalus:
        size = len(n)
        _U32.pack_into(out, pos, size)
        pos += 4
        out[pos:pos + size] = n
        pos += size
    return bytes(out)


def avcc_ok(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is whole AVCC: non-empty NAL units, each after its
    4-byte length, the last ending at the end. The ingest writes nothing
    else into a ring; the segmenters check anyway (a few lengths per frame),
    so a unit that is not cannot stop them."""
    end = len(data)
    pos = 0
    unpack = _U32.unpack_from
    while pos < end:
        if end - pos < 4:
            return False
        size = unpack(data, pos)[0]
        pos += 4 + size
        if size == 0 or pos > end:
            return False
    return True


def avcc_split(data: bytes | bytearray | memoryview) -> list[memoryview]:
    """Split AVCC bytes into NAL units (views into ``data``, no copies).

    Raises ProtocolError when a length runs past the end: an access unit in
    the ring was written by us, so this only trips on a foreign FLV/MP4 payload.
    """
    mv = memoryview(data)
    end = len(mv)
    out: list[memoryview] = []
    pos = 0
    while pos < end:
        if end - pos < 4:
            raise ProtocolError("AVCC: truncated NAL length")
        size = _U32.unpack_from(mv, pos)[0]
        pos += 4
        if size > end - pos:
            raise ProtocolError("AVCC: NAL length past end of access unit")
        out.append(mv[pos:pos + size])
        pos += size
    return out


def annexb_split(data: bytes | bytearray | memoryview) -> list[memoryview]:
    """Split Annex B bytes (3- or 4-byte start codes) into NAL units.

    Bytes before the first start code are ignored; trailing zero bytes of a
    NAL (part of a following 4-byte start code, or trailing_zero_8bits) are
    stripped; empty NALs are dropped.
    """
    raw = bytes(data) if not isinstance(data, bytes) else data
    mv = memoryview(raw)
    out: list[memoryview] = []
    pos = raw.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = raw.find(b"\x00\x00\x01", start)
        stop = len(raw) if nxt < 0 else nxt
        while stop > start and raw[stop - 1] == 0:
            stop -= 1
        if stop > start:
            out.append(mv[start:stop])
        pos = nxt
    return out


def avcc_to_annexb(data: bytes | bytearray | memoryview) -> bytes:
    """Replace each 4-byte length with a 4-byte start code."""
    parts: list[bytes | memoryview] = []
    for nal in avcc_split(data):
        parts.append(_START4)
        parts.append(nal)
    return b"".join(parts)


def annexb_to_avcc(data: bytes | bytearray | memoryview) -> bytes:
    """Annex B to AVCC (for encoders and files that produce start codes)."""
    return avcc_join(annexb_split(data))


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One frame out of a depacketiser.

    ``pts`` is the RTP timestamp extended to 64 bits, in the track's clock.
    ``data`` is AVCC for video, one raw AAC frame for audio. ``nal_types``
    lists the video NAL types in order (empty for audio).
    """

    pts: int
    data: bytes
    keyframe: bool
    nal_types: tuple[int, ...] = ()


@dataclass(slots=True)
class DepacketizerStats:
    """Packet-level trouble is counted here instead of raised.

    ``lost`` counts missing sequence numbers, ``late`` packets that arrived
    after a newer one (reordered or duplicated; they are discarded),
    ``malformed`` payloads that did not parse, ``unsupported`` payload types
    we do not handle (e.g. STAP-B, MTAP), ``dropped_units`` access units
    thrown away as incomplete, ``oversize`` units over the size/count limits.
    """

    packets: int = 0
    units: int = 0
    lost: int = 0
    late: int = 0
    malformed: int = 0
    unsupported: int = 0
    dropped_units: int = 0
    oversize: int = 0
