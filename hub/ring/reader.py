"""A reader of a stream's ring (lives in any process; never blocks a writer).

The reader maps the segment read-only: it cannot write to it by mistake, and
since it never goes through `SharedMemory` the resource tracker never learns
of the segment, so a reader process exiting can never unlink it (Python 3.11
would, for any segment a process attached). Only the creator unlinks.

Reading is a seqlock without the lock: load the slot's seq, the fields, copy
the bytes out (one copy: the `bytes` then shared by all of a process's
players), and only then check that the slot still holds the same seq and
that the writer has not announced an overwrite of the copied range
(``write_pos - pos <= data_size``). A failed check means the writer lapped
this reader: it jumps to the last keyframe, counts the lap, and flags the
first entry it returns afterwards (`after_lap`) so a player can resend its
sequence headers. If the last keyframe is gone too, it waits for the next
keyframe written.
"""

from __future__ import annotations

import mmap
import os
from types import TracebackType
from typing import NamedTuple

from hub.ring import layout as L

MAX_LAP_RETRIES = 4
"""Jumps one `read` makes after laps before giving up for this call."""


class RingEntry(NamedTuple):
    """One entry copied out of a ring."""

    seq: int
    track: int
    flags: int
    keyframe: bool
    pts: int
    dts: int
    data: bytes
    after_lap: bool = False
    """True on the first entry returned after the reader jumped (lapped)."""


class RingReader:
    """Attach with `RingReader.attach(name)`; call `read()` when woken up."""

    __slots__ = (
        "_name", "_mm", "_hdr", "_sq", "_si", "_doff", "_slot_mask",
        "_data_size", "_data_mask", "_next", "_wait_key", "_after_lap",
        "lapped", "_closed",
    )

    def __init__(self, name: str, mm: mmap.mmap) -> None:
        """Use `attach`; this validates and binds an existing mapping."""
        self._name = name
        self._mm = mm
        self._closed = False
        buf = memoryview(mm)
        hdr = buf[: L.HEADER_BYTES].cast("Q")
        try:
            if hdr[L.H_MAGIC] != L.MAGIC or hdr[L.H_VERSION] != L.LAYOUT_VERSION:
                raise L.RingFormatError(
                    f"segment {name!r} is not a ring of layout {L.LAYOUT_VERSION}"
                )
            slots, data_size = hdr[L.H_SLOTS], hdr[L.H_DATA_SIZE]
            try:
                L.check_geometry(slots, data_size)
            except ValueError as e:
                raise L.RingFormatError(f"segment {name!r}: {e}") from None
            if len(buf) < L.segment_size(slots, data_size):
                raise L.RingFormatError(f"segment {name!r} is shorter than its geometry")
            doff = L.data_offset(slots)
            self._sq = buf[L.HEADER_BYTES : doff].cast("Q")
            self._si = buf[L.HEADER_BYTES : doff].cast("q")
        except BaseException:
            hdr.release()
            raise
        finally:
            buf.release()  # the slices keep the mapping; `mm` can close once they go
        self._hdr = hdr
        self._doff = doff
        self._slot_mask = slots - 1
        self._data_size = data_size
        self._data_mask = data_size - 1
        self._next = 1
        self._wait_key = False
        self._after_lap = False
        self.lapped = 0
        """How many times the writer overran this reader."""
        self.seek_last_keyframe()

    @classmethod
    def attach(cls, name: str) -> RingReader:
        """Map the ring `name` read-only, positioned at its last keyframe.

        FileNotFoundError if there is no such segment, RingFormatError if it
        is not a ring.
        """
        fd = os.open(os.path.join(L.SHM_DIR, name), os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < L.HEADER_BYTES:
                raise L.RingFormatError(f"segment {name!r} is too small to be a ring")
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        try:
            return cls(name, mm)
        except BaseException:
            mm.close()
            raise

    @property
    def name(self) -> str:
        return self._name

    @property
    def write_seq(self) -> int:
        """Seq of the last entry the writer completed; 0 if none."""
        return self._hdr[L.H_WRITE_SEQ]

    @property
    def last_key_seq(self) -> int:
        return self._hdr[L.H_LAST_KEY]

    @property
    def next_seq(self) -> int:
        """Seq the next `read` starts from."""
        return self._next

    @property
    def closed(self) -> bool:
        """The writer closed the ring (or this reader was closed): once `read`
        returns [], no more entries."""
        return self._closed or self._hdr[L.H_CLOSED] != 0

    @property
    def description_version(self) -> int:
        return self._hdr[L.H_DESC_VER]

    def seek_last_keyframe(self) -> None:
        """Next read starts at the last keyframe; if none, at the next entry written."""
        ws = self._hdr[L.H_WRITE_SEQ]
        key = self._hdr[L.H_LAST_KEY]
        self._next = key if key else ws + 1
        self._wait_key = False
        self._after_lap = False  # a seek is the caller's own jump: no lap to report

    def seek_latest(self) -> None:
        """Next read returns only entries written after this call."""
        self._next = self._hdr[L.H_WRITE_SEQ] + 1
        self._wait_key = False
        self._after_lap = False

    def read(self, max_entries: int = 256) -> list[RingEntry]:
        """Copy out up to `max_entries` new entries; [] if nothing new.

        Never blocks and never writes to the segment. A closed reader reads
        nothing: a wake-up that arrives after its owner's teardown is harmless.
        """
        out: list[RingEntry] = []
        if self._closed:
            return out
        for _ in range(MAX_LAP_RETRIES):
            ws = self._hdr[L.H_WRITE_SEQ]
            first = self._next
            want = max_entries - len(out)
            if first > ws or want <= 0:
                break
            failed = self._read_range(first, min(ws, first + want - 1), out)
            if failed == 0:
                break
            self._on_lap(failed)
        return out

    def _read_range(self, first: int, last: int, out: list[RingEntry]) -> int:
        """Copy entries first..last into `out`; 0, or the seq found overwritten.

        Copies the whole batch first and validates afterwards, so the header's
        write position is loaded once per batch, after every copy.
        """
        sq, si, mm = self._sq, self._si, self._mm
        smask, dmask, size, doff = self._slot_mask, self._data_mask, self._data_size, self._doff
        copied: list[tuple[int, int, int, int, int, int, int, int, bytes]] = []
        seq = first
        while seq <= last:
            base = (seq & smask) << L.SLOT_SHIFT
            if sq[base] != seq:
                break
            key = sq[base + L.S_KEY]
            if self._wait_key:
                if sq[base] != seq:  # the key flag we read may be torn
                    break
                if not key:
                    seq += 1
                    self._next = seq
                    continue
                self._wait_key = False
            pos = sq[base + L.S_POS]
            n = sq[base + L.S_LENGTH]
            if n > size:  # torn fields; the seq check below rejects the entry
                n = 0
            start = doff + (pos & dmask)
            stop = start + n
            if stop <= doff + size:
                data = mm[start:stop]
            else:
                data = b"".join((mm[start : doff + size], mm[doff : stop - size]))
            copied.append((
                seq, base, pos, sq[base + L.S_TRACK], sq[base + L.S_FLAGS], key,
                si[base + L.S_PTS], si[base + L.S_DTS], data,
            ))
            seq += 1

        write_pos = self._hdr[L.H_WRITE_POS]  # loaded after every copy above
        for seq_i, base, pos, track, flags, key, pts, dts, data in copied:
            if sq[base] != seq_i or write_pos - pos > size:
                return seq_i
            out.append(RingEntry(seq_i, track, flags, key != 0, pts, dts, data, self._after_lap))
            self._after_lap = False
            self._next = seq_i + 1
        if seq <= last:  # stopped early on a slot that no longer holds `seq`
            return seq
        return 0

    def _on_lap(self, failed: int) -> None:
        """Jump after entry `failed` was found overwritten."""
        if not self._after_lap:  # one lap per episode, until an entry is returned
            self.lapped += 1
            self._after_lap = True
        ws = self._hdr[L.H_WRITE_SEQ]  # before the key: a key <= ws is then visible
        key = self._hdr[L.H_LAST_KEY]
        if key > failed:
            self._next = key
            self._wait_key = False
        else:  # everything up to ws is gone or useless without its keyframe
            self._next = ws + 1
            self._wait_key = True

    def close(self) -> None:
        """Unmap. Never unlinks: the segment belongs to its writer."""
        if self._closed:
            return
        self._closed = True
        for view in (self._hdr, self._sq, self._si):
            view.release()
        self._mm.close()

    def __enter__(self) -> RingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
