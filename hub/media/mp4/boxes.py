"""ISO BMFF boxes: headers for the writer, a bounded reader for files we wrote.

A box is ``size:u32 type:4cc payload``; ``size == 1`` means a 64-bit size
follows the type, ``size == 0`` (top level only) that the box runs to the end
of the file. The reader hands out views, never copies, and raises
`ProtocolError` for anything that does not add up — recorded files come back
from disk and may be cut short or damaged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

from hub.errors import ProtocolError

__all__ = [
    "Box", "box", "full_box", "iter_boxes", "read_box_header", "child", "children",
    "HEADER", "LARGE_HEADER", "MAX_DEPTH",
]

HEADER = 8
LARGE_HEADER = 16
#: Containers nest a few levels deep (moov/trak/mdia/minf/stbl/stsd/avc1/avcC).
MAX_DEPTH = 12

_HDR = struct.Struct(">I4s")
_LARGE = struct.Struct(">I4sQ")
_FULL = struct.Struct(">I4sI")

Buffer = bytes | bytearray | memoryview


def box(kind: bytes, *payload: Buffer) -> bytes:
    """A box around ``payload`` (32-bit size; our boxes never reach 4 GiB)."""
    size = HEADER + sum(len(p) for p in payload)
    if size > 0xFFFFFFFF:
        raise ValueError("box larger than 4 GiB")
    return b"".join((_HDR.pack(size, kind), *payload))


def full_box(kind: bytes, version: int, flags: int, *payload: Buffer) -> bytes:
    """A full box: version (8 bits) and flags (24 bits) before the payload."""
    size = HEADER + 4 + sum(len(p) for p in payload)
    if size > 0xFFFFFFFF:
        raise ValueError("box larger than 4 GiB")
    return b"".join((_FULL.pack(size, kind, (version << 24) | (flags & 0xFFFFFF)), *payload))


def read_box_header(data: Buffer, pos: int = 0) -> tuple[bytes, int, int]:
    """(type, header length, box size) of the box starting at ``pos``.

    ``size`` is 0 for a box that runs to the end of its container. Raises
    ProtocolError when the header itself is cut short or impossible.
    """
    if len(data) - pos < HEADER:
        raise ProtocolError("MP4: truncated box header")
    size, kind = _HDR.unpack_from(data, pos)
    if size == 1:
        if len(data) - pos < LARGE_HEADER:
            raise ProtocolError("MP4: truncated 64-bit box size")
        size = _LARGE.unpack_from(data, pos)[2]
        if size < LARGE_HEADER:
            raise ProtocolError("MP4: 64-bit box size smaller than its header")
        return bytes(kind), LARGE_HEADER, size
    if size != 0 and size < HEADER:
        raise ProtocolError("MP4: box size smaller than its header")
    return bytes(kind), HEADER, size


@dataclass(frozen=True, slots=True)
class Box:
    """A box as read: its header bytes as they were, and a view of its payload."""

    kind: bytes
    offset: int  # of the header, in the buffer it was read from
    header: bytes
    payload: memoryview

    @property
    def size(self) -> int:
        return len(self.header) + len(self.payload)

    def __bytes__(self) -> bytes:
        return self.header + bytes(self.payload)

    def full_header(self) -> tuple[int, int]:
        """(version, flags) of a full box."""
        if len(self.payload) < 4:
            raise ProtocolError(f"MP4: {self.kind!r} too short for a full box")
        word = int.from_bytes(self.payload[:4], "big")
        return word >> 24, word & 0xFFFFFF


def iter_boxes(data: Buffer, start: int = 0, end: int | None = None, *,
               top_level: bool = False) -> Iterator[Box]:
    """The boxes laid end to end in ``data[start:end]``; each must fit exactly.
    A size of 0 (to the end) is only taken at the ``top_level`` of a file."""
    mv = memoryview(data)
    stop = len(mv) if end is None else end
    if not 0 <= start <= stop <= len(mv):
        raise ProtocolError("MP4: box range outside the buffer")
    pos = start
    while pos < stop:
        kind, hlen, size = read_box_header(mv[:stop], pos)
        if size == 0:
            if not top_level:
                raise ProtocolError(f"MP4: box {kind!r} without a size inside a container")
            size = stop - pos
        if size > stop - pos:
            raise ProtocolError(f"MP4: box {kind!r} runs past its container")
        yield Box(kind, pos, bytes(mv[pos:pos + hlen]), mv[pos + hlen:pos + size])
        pos += size


def children(parent: Box, skip: int = 0) -> Iterator[Box]:
    """Child boxes of a container (``skip`` payload bytes first, e.g. 4 for a full box)."""
    if skip > len(parent.payload):
        raise ProtocolError(f"MP4: {parent.kind!r} too short")
    return iter_boxes(parent.payload, skip)


def child(parent: Box, kind: bytes, skip: int = 0) -> Box:
    """The first child of type ``kind``; ProtocolError when there is none."""
    for b in children(parent, skip):
        if b.kind == kind:
            return b
    raise ProtocolError(f"MP4: {parent.kind!r} has no {kind!r}")
