"""The single writer of a stream's ring (lives in the owning shard).

The writer never waits for anyone: it overwrites the oldest entries, and a
reader that was too slow finds out on its own (see `reader.py`). Publishing
order is what makes that safe without locks:

1. raise the header's write position to the entry's end (announce which old
   bytes are about to be overwritten),
2. copy the entry's bytes into the circular data area (split at the end),
3. invalidate the slot (seq = 0), fill its fields, then store its seq,
4. if a keyframe, store the header's last-keyframe seq,
5. store the header's write seq.

Each store is one aligned 8-byte word; on x86-64 stores become visible in
program order, so a reader that sees step 5 sees 1-4.

The segment is a file in /dev/shm opened and mapped here (what
`shm_open` does), not a `multiprocessing.shared_memory.SharedMemory`: that
one registers every segment with multiprocessing's resource tracker, a
Python process of its own (~10 MB) started by the first ring of each
shard. The writer unlinks its segments itself, and the supervisor removes
what a dead shard left (`names.cleanup_stale`).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence
from types import TracebackType
from typing import Union

from hub.ring import layout as L

#: A slot's words after its seq (S_POS .. S_KEY), written in one call.
_SLOT_FILL = struct.Struct("=QQQQqqQ")

Buffer = Union[bytes, bytearray, memoryview]
"""A byte buffer: bytes, bytearray or a 1-D memoryview of bytes."""


class RingWriter:
    """Creates a ring segment and appends entries to it.

    An entry is one access unit (a video frame as length-prefixed NAL units,
    or an audio frame) with its track, flags and timestamps. Mark only the
    entries a new player can start from as keyframes: video IDR frames, or
    every frame of an audio-only stream (an audio keyframe in a video stream
    would make new players start without a picture).
    """

    __slots__ = (
        "_mm", "_name", "_hdr", "_sq", "_slots", "_data", "_slot_mask",
        "_data_size", "_data_mask", "_seq", "_pos", "_last_key", "_closed",
    )

    def __init__(self, name: str, mm: mmap.mmap, slots: int, data_size: int) -> None:
        """Use `create`; this only binds an already initialised segment."""
        self._mm = mm
        self._name = name
        buf = memoryview(mm)
        doff = L.data_offset(slots)
        self._hdr = buf[: L.HEADER_BYTES].cast("Q")
        self._sq = buf[L.HEADER_BYTES : doff].cast("Q")
        self._slots = buf[L.HEADER_BYTES : doff]
        self._data = buf[doff : doff + data_size]
        self._slot_mask = slots - 1
        self._data_size = data_size
        self._data_mask = data_size - 1
        self._seq = 0
        self._pos = 0
        self._last_key = 0
        self._closed = False

    @classmethod
    def create(
        cls,
        name: str,
        *,
        slots: int = L.DEFAULT_SLOTS,
        data_size: int = L.DEFAULT_DATA_SIZE,
        replace: bool = False,
    ) -> RingWriter:
        """Create the segment `name` (FileExistsError if it exists).

        `replace=True` first unlinks a leftover segment of that name, e.g.
        one left by a crashed earlier writer of the same stream; readers
        still attached to it keep their old mapping.
        """
        L.check_geometry(slots, data_size)
        if "/" in name or not name:
            raise ValueError(f"bad segment name {name!r}")
        if replace:
            _unlink_quietly(name)
        path = os.path.join(L.SHM_DIR, name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                size = L.segment_size(slots, data_size)
                os.ftruncate(fd, size)  # zeros, allocated as pages are touched
                mm = mmap.mmap(fd, size)
            finally:
                os.close(fd)
            writer = cls(name, mm, slots, data_size)
            hdr = writer._hdr
            hdr[L.H_VERSION] = L.LAYOUT_VERSION
            hdr[L.H_SLOTS] = slots
            hdr[L.H_DATA_SIZE] = data_size
            hdr[L.H_MAGIC] = L.MAGIC  # last: a half-built segment never looks valid
        except BaseException:
            _unlink_quietly(name)
            raise
        return writer

    @property
    def name(self) -> str:
        return self._name

    @property
    def write_seq(self) -> int:
        """Seq of the last entry written; 0 if none."""
        return self._seq

    @property
    def last_key_seq(self) -> int:
        """Seq of the last keyframe entry; 0 if none."""
        return self._last_key

    @property
    def slots(self) -> int:
        return self._slot_mask + 1

    @property
    def data_size(self) -> int:
        return self._data_size

    def set_description_version(self, v: int) -> None:
        """Tell readers the stream description changed (they re-fetch it)."""
        self._hdr[L.H_DESC_VER] = v

    def write(
        self,
        data: Buffer | Sequence[Buffer],
        *,
        track: int,
        keyframe: bool,
        pts: int,
        dts: int,
        flags: int = 0,
    ) -> int:
        """Append one entry and return its seq.

        `data` may be a list of buffers (e.g. a header and a payload), which
        are stored back to back without being joined first. An entry larger
        than the data area is refused with ValueError. `track` and `flags`
        are unsigned 64-bit, `pts` and `dts` signed 64-bit.
        """
        if self._closed:
            raise ValueError("ring writer is closed")
        bufs: Sequence[Buffer]
        if isinstance(data, (bytes, bytearray, memoryview)):
            bufs = (data,)
        else:
            bufs = data
        n = 0
        for b in bufs:
            n += b.nbytes if isinstance(b, memoryview) else len(b)
        size = self._data_size
        if n > size:
            raise ValueError(f"ring entry of {n} bytes exceeds the data area ({size})")

        pos = self._pos
        end = pos + n
        self._hdr[L.H_WRITE_POS] = end  # 1. announce the overwrite
        self._pos = end  # now, so a bad argument below cannot move it back
        dst = self._data
        off = pos & self._data_mask
        for b in bufs:  # 2. copy, splitting at the end of the area
            if isinstance(b, memoryview) and (b.format != "B" or b.ndim != 1):
                b = b.cast("B")
            m = len(b)
            if off + m <= size:
                dst[off : off + m] = b
                off += m
                if off == size:
                    off = 0
            else:
                head = size - off
                mv = memoryview(b)
                dst[off:] = mv[:head]
                dst[: m - head] = mv[head:]
                off = m - head

        seq = self._seq + 1
        sq = self._sq
        base = (seq & self._slot_mask) << L.SLOT_SHIFT
        sq[base] = 0  # 3. invalidate, fill, then publish the slot
        try:
            _SLOT_FILL.pack_into(self._slots, (base + L.S_POS) * L.WORD, pos, n, track, flags, pts, dts,
                                 1 if keyframe else 0)
        except struct.error as e:  # a field out of its range: the slot stays invalid
            raise OverflowError(str(e)) from None
        sq[base] = seq
        hdr = self._hdr
        if keyframe:  # 4.
            hdr[L.H_LAST_KEY] = seq
            self._last_key = seq
        hdr[L.H_WRITE_SEQ] = seq  # 5.
        self._seq = seq
        return seq

    def close(self, unlink: bool = True) -> None:
        """Mark end of stream for readers, unmap, and (by default) unlink.

        With `unlink=False` the segment outlives this process.
        """
        if self._closed:
            return
        self._closed = True
        self._hdr[L.H_CLOSED] = 1  # first: readers see end of stream
        for view in (self._hdr, self._sq, self._slots, self._data):
            view.release()
        self._mm.close()
        if unlink:
            _unlink_quietly(self._name)  # already gone if someone cleaned up first

    def __enter__(self) -> RingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(os.path.join(L.SHM_DIR, name))
    except FileNotFoundError:
        pass
