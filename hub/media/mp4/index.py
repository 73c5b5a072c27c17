"""Index a recorded fMP4 file: its init, and each fragment's place and times.

A recorded segment file is an init segment followed by fragments (what
`RecordingFile` writes from the segmenter's parts). `index_file` reads its
top-level boxes through a ``read_at(offset, length)`` callable — the
caller's I/O, so this stays sans-IO — parsing only ``moov``, each ``moof``
and a ``prft`` (the wall clock of the start, when the recorder knew it);
media data is never read. A box cut short at the end (a recorder killed
mid-write) ends the index: everything before it still plays.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from hub.errors import ProtocolError
from hub.media.mp4.boxes import Box, child, children, iter_boxes, read_box_header
from hub.media.mp4.fragment import TFHD_BASE_DATA_OFFSET, TFHD_DEFAULT_BASE_IS_MOOF, Moof, sample_is_sync
from hub.media.mp4.recorder import ntp_to_unix

__all__ = ["ReadAt", "FragmentIndex", "Mp4FileIndex", "index_file", "MAX_MOOV", "MAX_MOOF"]

ReadAt = Callable[[int, int], bytes]

#: Boxes read into memory are bounded: a damaged size field cannot make us
#: read a whole file.
MAX_MOOV = 1 << 20
MAX_MOOF = 4 << 20

_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class FragmentIndex:
    offset: int  # of the moof in its file
    moof: bytes
    size: int  # moof up to the end of the mdat after it
    bases: tuple[tuple[int, int, int], ...]  # per traf: (track id, base decode time, duration)
    independent: bool  # the reference track's first sample is a sync sample


@dataclass(frozen=True, slots=True)
class Mp4FileIndex:
    ftyp: bytes
    moov: bytes
    timescales: dict[int, int]  # track id -> timescale
    reference: int  # track id timing is read from: the video track, else the first
    fragments: tuple[FragmentIndex, ...]
    truncated: bool  # an incomplete box at the end was left out
    wall: tuple[int, int, float] | None = None  # the first prft: (track id, decode time, Unix time)

    @property
    def wall_start(self) -> float | None:
        """Wall clock of the first fragment's reference decode time, from the ``prft``."""
        if self.wall is None or not self.fragments:
            return None
        track, media_time, when = self.wall
        if track != self.reference:
            return None
        return when + (self.base(self.fragments[0]) - media_time) / self.timescales[track]

    def base(self, frag: FragmentIndex, track: int | None = None) -> int:
        want = self.reference if track is None else track
        for tid, base, _ in frag.bases:
            if tid == want:
                return base
        raise KeyError(want)

    def duration_of(self, frag: FragmentIndex) -> int:
        """The reference track's duration in ``frag`` (its timescale)."""
        return sum(d for t, _, d in frag.bases if t == self.reference)

    @property
    def duration(self) -> float:
        """Seconds from the first fragment's start to the last one's end (reference track)."""
        if not self.fragments:
            return 0.0
        first, last = self.fragments[0], self.fragments[-1]
        end = max(b + d for t, b, d in last.bases if t == self.reference)
        return (end - self.base(first)) / self.timescales[self.reference]


class _Trex:
    __slots__ = ("duration", "flags")

    def __init__(self, duration: int, flags: int) -> None:
        self.duration = duration
        self.flags = flags


def _full_payload(b: Box) -> memoryview:
    if len(b.payload) < 4:
        raise ProtocolError(f"MP4: {b.kind!r} too short")
    return b.payload[4:]


def _parse_moov(moov: Box) -> tuple[dict[int, int], int, dict[int, _Trex]]:
    timescales: dict[int, int] = {}
    video: int | None = None
    trex: dict[int, _Trex] = {}
    for c in children(moov):
        if c.kind == b"trak":
            tkhd = child(c, b"tkhd")
            version, _ = tkhd.full_header()
            p = _full_payload(tkhd)
            at = 16 if version == 1 else 8
            if len(p) < at + 4:
                raise ProtocolError("MP4: tkhd too short")
            track_id = _U32.unpack_from(p, at)[0]
            mdia = child(c, b"mdia")
            mdhd = child(mdia, b"mdhd")
            version, _ = mdhd.full_header()
            p = _full_payload(mdhd)
            at = 16 if version == 1 else 8
            if len(p) < at + 4:
                raise ProtocolError("MP4: mdhd too short")
            timescale = _U32.unpack_from(p, at)[0]
            if timescale == 0:
                raise ProtocolError("MP4: timescale 0")
            p = _full_payload(child(mdia, b"hdlr"))
            if len(p) < 8:
                raise ProtocolError("MP4: hdlr too short")
            if bytes(p[4:8]) == b"vide" and video is None:
                video = track_id
            timescales[track_id] = timescale
        elif c.kind == b"mvex":
            for t in children(c):
                if t.kind == b"trex":
                    p = _full_payload(t)
                    if len(p) != 20:
                        raise ProtocolError("MP4: trex size")
                    tid, _, duration, _, flags = struct.unpack_from(">IIIII", p)
                    trex[tid] = _Trex(duration, flags)
    if not timescales:
        raise ProtocolError("MP4: moov without tracks")
    return timescales, video if video is not None else min(timescales), trex


def _index_moof(data: bytes, offset: int, size: int, timescales: dict[int, int], reference: int,
                trex: dict[int, _Trex]) -> FragmentIndex:
    moof = Moof.from_bytes(data)
    bases = []
    seen_reference = False
    independent = False
    for traf in moof.trafs:
        h = traf.tfhd
        if h.track_id not in timescales:
            raise ProtocolError("MP4: traf for an unknown track")
        if h.flags & TFHD_BASE_DATA_OFFSET or not h.flags & TFHD_DEFAULT_BASE_IS_MOOF:
            raise ProtocolError("MP4: only default-base-is-moof fragments can be copied")
        if traf.tfdt is None:
            raise ProtocolError("MP4: traf without tfdt")
        defaults = trex.get(h.track_id, _Trex(0, 0))
        default_duration = h.default_duration if h.default_duration is not None else defaults.duration
        default_flags = h.default_flags if h.default_flags is not None else defaults.flags
        base = traf.tfdt.base_time
        t = base
        first = True
        for run in traf.truns:
            if run.data_offset is None or run.data_offset < 0:
                raise ProtocolError("MP4: trun without a data offset")
            pos = run.data_offset
            for i, s in enumerate(run.samples):
                if s.size is None:
                    raise ProtocolError("MP4: trun without sample sizes")
                pos += s.size
                if pos > size:
                    raise ProtocolError("MP4: sample data past the fragment")
                if h.track_id == reference:
                    if first:
                        flags = (run.first_sample_flags if i == 0 and run.first_sample_flags is not None
                                 else s.flags if s.flags is not None else default_flags)
                        independent = sample_is_sync(flags)
                    seen_reference = True
                first = False
                t += s.duration if s.duration is not None else default_duration
        bases.append((h.track_id, base, t - base))
    if not seen_reference:
        raise ProtocolError("MP4: fragment without samples of the reference track")
    return FragmentIndex(offset, data, size, tuple(bases), independent)


def index_file(read_at: ReadAt, file_size: int) -> Mp4FileIndex:
    """Index a recorded file; ProtocolError when it is not one we can join."""
    pos = 0
    ftyp = moov = b""
    timescales: dict[int, int] = {}
    reference = 0
    trex: dict[int, _Trex] = {}
    fragments: list[FragmentIndex] = []
    truncated = False
    wall: tuple[int, int, float] | None = None
    while pos < file_size:
        head = read_at(pos, min(16, file_size - pos))
        if len(head) < 8 or (head[:4] == b"\x00\x00\x00\x01" and len(head) < 16):
            truncated = True  # a header cut short at the very end
            break
        kind, _, size = read_box_header(head)
        if size == 0:
            size = file_size - pos
        if pos + size > file_size:
            truncated = True
            break
        if kind == b"ftyp" and not ftyp:
            if size > 4096:
                raise ProtocolError("MP4: ftyp too large")
            ftyp = read_at(pos, size)
        elif kind == b"moov" and not moov:
            if size > MAX_MOOV:
                raise ProtocolError("MP4: moov too large")
            moov = read_at(pos, size)
            timescales, reference, trex = _parse_moov(next(iter_boxes(moov)))
        elif kind == b"prft" and wall is None and not fragments and 24 <= size <= 64:
            wall = _parse_prft(read_at(pos, size))
        elif kind == b"moof":
            if not moov:
                raise ProtocolError("MP4: moof before moov")
            if size > MAX_MOOF:
                raise ProtocolError("MP4: moof too large")
            moof = read_at(pos, size)
            mdat_at = pos + size
            if file_size - mdat_at < 8:
                truncated = True
                break
            mkind, _, msize = read_box_header(read_at(mdat_at, min(16, file_size - mdat_at)))
            if mkind != b"mdat":
                raise ProtocolError("MP4: moof not followed by mdat")
            if msize == 0:
                msize = file_size - mdat_at
            if mdat_at + msize > file_size:
                truncated = True
                break
            fragments.append(_index_moof(moof, pos, size + msize, timescales, reference, trex))
            size += msize
        pos += size
    if not ftyp or not moov:
        raise ProtocolError("MP4: no ftyp/moov")
    return Mp4FileIndex(ftyp, moov, timescales, reference, tuple(fragments), truncated, wall)


def _parse_prft(data: bytes) -> tuple[int, int, float] | None:
    version = data[8]
    want = 32 if version == 1 else 28
    if len(data) < want:
        return None
    track, ntp = struct.unpack_from(">IQ", data, 12)
    media_time = struct.unpack_from(">Q" if version == 1 else ">I", data, 24)[0]
    return track, media_time, ntp_to_unix(ntp)
