"""Movie fragments: ``moof`` + ``mdat`` out, and the fragment boxes read back.

`write_fragment` is the hot path, once per part per stream: one bytearray
for ``moof`` and the ``mdat`` header, filled with ``pack_into``; the sample
data follows as the caller's own buffers (no copy), ready for ``writev`` or
``b"".join``. Every ``traf`` has ``default-base-is-moof`` (offsets count from
the ``moof``), a version 1 ``tfdt`` and a ``trun``:

- video: version 1 (signed composition offsets), per-sample duration, size,
  flags (sync: depends on nothing; other: depends on others, non-sync) and
  composition offset (pts - dts);
- audio: per-sample duration and size; every sample is a sync sample
  (``tfhd`` default sample flags).

The dataclasses below (`Mfhd`, `Tfhd`, `Tfdt`, `Trun`, `Traf`, `Moof`) parse
and rebuild the same boxes byte for byte; the recording's range join uses
them to renumber fragments and shift their decode times.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

from hub.errors import ProtocolError
from hub.media.mp4.boxes import HEADER, Box, box, children, full_box, iter_boxes

__all__ = [
    "Fmp4Sample", "TrackRun", "write_fragment", "styp",
    "SAMPLE_SYNC", "SAMPLE_NON_SYNC",
    "TFHD_BASE_DATA_OFFSET", "TFHD_SAMPLE_DESCRIPTION_INDEX", "TFHD_DEFAULT_DURATION",
    "TFHD_DEFAULT_SIZE", "TFHD_DEFAULT_FLAGS", "TFHD_DURATION_IS_EMPTY", "TFHD_DEFAULT_BASE_IS_MOOF",
    "TRUN_DATA_OFFSET", "TRUN_FIRST_SAMPLE_FLAGS", "TRUN_DURATION", "TRUN_SIZE", "TRUN_FLAGS",
    "TRUN_CTO", "Mfhd", "Tfhd", "Tfdt", "Trun", "TrunSample", "Traf", "Moof",
    "sample_is_sync", "fragment_bases", "shift_fragment",
]

#: sample_depends_on = 2 (an I picture: depends on no other sample).
SAMPLE_SYNC = 0x02000000
#: sample_depends_on = 1, sample_is_non_sync_sample = 1.
SAMPLE_NON_SYNC = 0x01010000

TFHD_BASE_DATA_OFFSET = 0x000001
TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
TFHD_DEFAULT_DURATION = 0x000008
TFHD_DEFAULT_SIZE = 0x000010
TFHD_DEFAULT_FLAGS = 0x000020
TFHD_DURATION_IS_EMPTY = 0x010000
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000

TRUN_DATA_OFFSET = 0x000001
TRUN_FIRST_SAMPLE_FLAGS = 0x000004
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_CTO = 0x000800

_VIDEO_TRUN = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTO
_AUDIO_TRUN = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE

_BOX = struct.Struct(">I4s")
_FULL = struct.Struct(">I4sI")
_MFHD = struct.Struct(">I4sII")
_TFHD = struct.Struct(">I4sII")
_TFHD_FLAGS = struct.Struct(">I4sIII")
_TFDT = struct.Struct(">I4sIQ")
_TRUN = struct.Struct(">I4sIIi")
_VIDEO_ENTRY = struct.Struct(">IIIi")
_AUDIO_ENTRY = struct.Struct(">II")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")

_MAX_MDAT = 0xFFFFFFFF - HEADER
#: A trun without per-sample fields costs no bytes per sample: bound it apart.
MAX_TRUN_SAMPLES = 100_000

Buffer = bytes | bytearray | memoryview


class Fmp4Sample(NamedTuple):
    """One access unit: its bytes, duration and composition offset in the
    track's timescale, and whether decoding can start here."""

    data: Buffer
    duration: int
    cto: int
    sync: bool


class TrackRun(NamedTuple):
    """A track's samples in one fragment, from decode time ``base_time``."""

    track_id: int
    base_time: int
    samples: Sequence[Fmp4Sample]
    video: bool


def styp() -> bytes:
    """Segment type box at the head of a media segment (14496-12 8.16.2)."""
    return box(b"styp", b"msdh", _U32.pack(0), b"msdh", b"msix")


def write_fragment(sequence: int, runs: Sequence[TrackRun]) -> list[Buffer]:
    """``moof`` + ``mdat`` for ``runs``: [moof and mdat header, sample, sample, ...].

    ``sequence`` is the ``mfhd`` sequence number (starts at 1, increases by
    one per fragment). Runs without samples are left out.
    """
    runs = [r for r in runs if r.samples]
    if not runs:
        raise ValueError("a fragment needs at least one sample")
    moof_size = HEADER + 16
    data_size = 0
    for r in runs:
        moof_size += HEADER + (16 if r.video else 20) + 20 + 20 + len(r.samples) * (16 if r.video else 8)
        for s in r.samples:
            data_size += len(s.data)
    if data_size > _MAX_MDAT:
        raise ValueError("mdat larger than 4 GiB")
    head = bytearray(moof_size + HEADER)
    _BOX.pack_into(head, 0, moof_size, b"moof")
    _MFHD.pack_into(head, 8, 16, b"mfhd", 0, sequence & 0xFFFFFFFF)
    pos = 24
    data_offset = moof_size + HEADER
    out: list[Buffer] = [head]
    for r in runs:
        n = len(r.samples)
        video = r.video
        trun_size = 20 + n * (16 if video else 8)
        tfhd_size = 16 if video else 20
        _BOX.pack_into(head, pos, HEADER + tfhd_size + 20 + trun_size, b"traf")
        pos += HEADER
        if video:
            _TFHD.pack_into(head, pos, 16, b"tfhd", TFHD_DEFAULT_BASE_IS_MOOF, r.track_id)
        else:
            _TFHD_FLAGS.pack_into(head, pos, 20, b"tfhd", TFHD_DEFAULT_BASE_IS_MOOF | TFHD_DEFAULT_FLAGS,
                                  r.track_id, SAMPLE_SYNC)
        pos += tfhd_size
        _TFDT.pack_into(head, pos, 20, b"tfdt", 0x01000000, r.base_time)
        pos += 20
        _TRUN.pack_into(head, pos, trun_size, b"trun", (0x01000000 | _VIDEO_TRUN) if video else _AUDIO_TRUN,
                        n, data_offset)
        pos += 20
        if video:
            pack = _VIDEO_ENTRY.pack_into
            for s in r.samples:
                size = len(s.data)
                pack(head, pos, s.duration, size, SAMPLE_SYNC if s.sync else SAMPLE_NON_SYNC, s.cto)
                pos += 16
                data_offset += size
                out.append(s.data)
        else:
            pack = _AUDIO_ENTRY.pack_into
            for s in r.samples:
                size = len(s.data)
                pack(head, pos, s.duration, size)
                pos += 8
                data_offset += size
                out.append(s.data)
    _BOX.pack_into(head, pos, HEADER + data_size, b"mdat")
    return out


def _tfdt_offsets(head: Buffer) -> list[tuple[int, int]]:
    """(track id, offset of the 64-bit tfdt value) per traf of a fragment we wrote.

    A walk over the box sizes, not a parse: this runs once per part per
    recording, and `write_fragment` laid the boxes out."""
    moof_end = _U32.unpack_from(head, 0)[0]
    out = []
    pos = HEADER + 16  # moof header, mfhd
    while pos < moof_end:
        traf_size = _U32.unpack_from(head, pos)[0]
        if traf_size < HEADER:
            raise ValueError("not a fragment of ours: box size")
        traf_end = pos + traf_size
        at = pos + HEADER
        track = -1
        while at < traf_end:
            size, kind = _BOX.unpack_from(head, at)
            if size < HEADER:
                raise ValueError("not a fragment of ours: box size")
            if kind == b"tfhd":
                track = _U32.unpack_from(head, at + 12)[0]
            elif kind == b"tfdt":
                if head[at + 8] != 1:
                    raise ValueError("not a fragment of ours: tfdt version 0")
                out.append((track, at + 12))
            at += size
        pos = traf_end
    return out


def fragment_bases(head: Buffer) -> dict[int, int]:
    """Track id -> ``tfdt`` of a fragment written by `write_fragment` (its first chunk)."""
    return {track: _U64.unpack_from(head, at)[0] for track, at in _tfdt_offsets(head)}


def shift_fragment(head: Buffer, shifts: dict[int, int]) -> bytearray:
    """A copy of a fragment's ``moof`` (and ``mdat`` header) with each track's
    decode time moved by ``shifts[track id]`` (clamped at 0); the samples
    after it are untouched, so they need no copy."""
    out = bytearray(head)
    for track, at in _tfdt_offsets(out):
        _U64.pack_into(out, at, max(0, _U64.unpack_from(out, at)[0] + shifts.get(track, 0)))
    return out


def sample_is_sync(flags: int) -> bool:
    """``sample_is_non_sync_sample`` clear (14496-12 8.8.3.1)."""
    return not flags & 0x00010000


# -- the same boxes read back ------------------------------------------------


def _full(b: Box) -> tuple[int, int, memoryview]:
    if len(b.payload) < 4:
        raise ProtocolError(f"MP4: {b.kind!r} too short")
    word = _U32.unpack_from(b.payload, 0)[0]
    return word >> 24, word & 0xFFFFFF, b.payload[4:]


@dataclass(slots=True)
class Mfhd:
    sequence: int
    flags: int = 0  # none defined; kept so bytes(parsed) is what was read

    @classmethod
    def parse(cls, b: Box) -> Mfhd:
        version, flags, p = _full(b)
        if version != 0 or len(p) != 4:
            raise ProtocolError("MP4: mfhd size or version")
        return cls(_U32.unpack_from(p, 0)[0], flags)

    def __bytes__(self) -> bytes:
        return full_box(b"mfhd", 0, self.flags, _U32.pack(self.sequence))


@dataclass(slots=True)
class Tfhd:
    flags: int
    track_id: int
    base_data_offset: int | None = None
    sample_description_index: int | None = None
    default_duration: int | None = None
    default_size: int | None = None
    default_flags: int | None = None

    @classmethod
    def parse(cls, b: Box) -> Tfhd:
        version, flags, p = _full(b)
        want = 4 + (8 if flags & TFHD_BASE_DATA_OFFSET else 0) + sum(
            4 for bit in (TFHD_SAMPLE_DESCRIPTION_INDEX, TFHD_DEFAULT_DURATION, TFHD_DEFAULT_SIZE,
                          TFHD_DEFAULT_FLAGS) if flags & bit)
        if version != 0 or len(p) != want:
            raise ProtocolError("MP4: tfhd size or version")
        t = cls(flags, _U32.unpack_from(p, 0)[0])
        pos = 4
        if flags & TFHD_BASE_DATA_OFFSET:
            t.base_data_offset = _U64.unpack_from(p, pos)[0]
            pos += 8
        values = []
        for bit in (TFHD_SAMPLE_DESCRIPTION_INDEX, TFHD_DEFAULT_DURATION, TFHD_DEFAULT_SIZE,
                    TFHD_DEFAULT_FLAGS):
            if flags & bit:
                values.append(_U32.unpack_from(p, pos)[0])
                pos += 4
            else:
                values.append(None)
        t.sample_description_index, t.default_duration, t.default_size, t.default_flags = values
        return t

    def __bytes__(self) -> bytes:
        parts = [_U32.pack(self.track_id)]
        if self.flags & TFHD_BASE_DATA_OFFSET:
            parts.append(_U64.pack(self.base_data_offset or 0))
        for bit, v in ((TFHD_SAMPLE_DESCRIPTION_INDEX, self.sample_description_index),
                       (TFHD_DEFAULT_DURATION, self.default_duration),
                       (TFHD_DEFAULT_SIZE, self.default_size), (TFHD_DEFAULT_FLAGS, self.default_flags)):
            if self.flags & bit:
                parts.append(_U32.pack(v or 0))
        return full_box(b"tfhd", 0, self.flags, *parts)


@dataclass(slots=True)
class Tfdt:
    version: int
    base_time: int
    flags: int = 0  # none defined; kept so bytes(parsed) is what was read

    @classmethod
    def parse(cls, b: Box) -> Tfdt:
        version, flags, p = _full(b)
        if version == 1 and len(p) == 8:
            return cls(1, _U64.unpack_from(p, 0)[0], flags)
        if version == 0 and len(p) == 4:
            return cls(0, _U32.unpack_from(p, 0)[0], flags)
        raise ProtocolError("MP4: tfdt size or version")

    def __bytes__(self) -> bytes:
        if self.version == 0:
            if self.base_time > 0xFFFFFFFF:
                raise ValueError("tfdt version 0 holds 32 bits")
            return full_box(b"tfdt", 0, self.flags, _U32.pack(self.base_time))
        return full_box(b"tfdt", 1, self.flags, _U64.pack(self.base_time))


class TrunSample(NamedTuple):
    duration: int | None
    size: int | None
    flags: int | None
    cto: int | None


@dataclass(slots=True)
class Trun:
    version: int
    flags: int
    data_offset: int | None = None
    first_sample_flags: int | None = None
    samples: list[TrunSample] = field(default_factory=list)

    @classmethod
    def parse(cls, b: Box) -> Trun:
        version, flags, p = _full(b)
        if version > 1 or len(p) < 4:
            raise ProtocolError("MP4: trun version or size")
        count = _U32.unpack_from(p, 0)[0]
        pos = 4
        t = cls(version, flags)
        if flags & TRUN_DATA_OFFSET:
            if len(p) < pos + 4:
                raise ProtocolError("MP4: trun too short")
            t.data_offset = _I32.unpack_from(p, pos)[0]
            pos += 4
        if flags & TRUN_FIRST_SAMPLE_FLAGS:
            if len(p) < pos + 4:
                raise ProtocolError("MP4: trun too short")
            t.first_sample_flags = _U32.unpack_from(p, pos)[0]
            pos += 4
        fields = [bool(flags & bit) for bit in (TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO)]
        entry = 4 * sum(fields)
        # The count is checked against the bytes before anything is allocated.
        if count > MAX_TRUN_SAMPLES or len(p) - pos != count * entry:
            raise ProtocolError("MP4: trun sample count does not match its size")
        signed = version == 1
        for _ in range(count):
            vals: list[int | None] = []
            for i, present in enumerate(fields):
                if not present:
                    vals.append(None)
                    continue
                vals.append((_I32 if i == 3 and signed else _U32).unpack_from(p, pos)[0])
                pos += 4
            t.samples.append(TrunSample(*vals))
        return t

    def __bytes__(self) -> bytes:
        parts = [_U32.pack(len(self.samples))]
        if self.flags & TRUN_DATA_OFFSET:
            parts.append(_I32.pack(self.data_offset or 0))
        if self.flags & TRUN_FIRST_SAMPLE_FLAGS:
            parts.append(_U32.pack(self.first_sample_flags or 0))
        bits = (TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO)
        for s in self.samples:
            for i, (bit, v) in enumerate(zip(bits, s)):
                if self.flags & bit:
                    parts.append((_I32 if i == 3 and self.version == 1 else _U32).pack(v or 0))
        return full_box(b"trun", self.version, self.flags, *parts)


@dataclass(slots=True)
class Traf:
    """A track fragment; boxes we do not model are kept as read, in order."""

    tfhd: Tfhd
    tfdt: Tfdt | None
    truns: list[Trun]
    boxes: list[Tfhd | Tfdt | Trun | Box]

    @classmethod
    def parse(cls, b: Box) -> Traf:
        tfhd: Tfhd | None = None
        tfdt: Tfdt | None = None
        truns: list[Trun] = []
        boxes: list[Tfhd | Tfdt | Trun | Box] = []
        for c in children(b):
            if c.kind == b"tfhd" and tfhd is None:
                tfhd = Tfhd.parse(c)
                boxes.append(tfhd)
            elif c.kind == b"tfdt" and tfdt is None:
                tfdt = Tfdt.parse(c)
                boxes.append(tfdt)
            elif c.kind == b"trun":
                trun = Trun.parse(c)
                truns.append(trun)
                boxes.append(trun)
            else:
                boxes.append(c)
        if tfhd is None:
            raise ProtocolError("MP4: traf without tfhd")
        return cls(tfhd, tfdt, truns, boxes)

    def __bytes__(self) -> bytes:
        return box(b"traf", *(bytes(c) for c in self.boxes))


@dataclass(slots=True)
class Moof:
    mfhd: Mfhd
    trafs: list[Traf]
    boxes: list[Mfhd | Traf | Box]

    @classmethod
    def parse(cls, b: Box) -> Moof:
        if b.kind != b"moof":
            raise ProtocolError("MP4: not a moof")
        mfhd: Mfhd | None = None
        trafs: list[Traf] = []
        boxes: list[Mfhd | Traf | Box] = []
        for c in children(b):
            if c.kind == b"mfhd" and mfhd is None:
                mfhd = Mfhd.parse(c)
                boxes.append(mfhd)
            elif c.kind == b"traf":
                traf = Traf.parse(c)
                trafs.append(traf)
                boxes.append(traf)
            else:
                boxes.append(c)
        if mfhd is None:
            raise ProtocolError("MP4: moof without mfhd")
        return cls(mfhd, trafs, boxes)

    @classmethod
    def from_bytes(cls, data: Buffer) -> Moof:
        boxes = list(iter_boxes(data))
        if len(boxes) != 1:
            raise ProtocolError("MP4: expected exactly one moof")
        return cls.parse(boxes[0])

    def __bytes__(self) -> bytes:
        return box(b"moof", *(bytes(c) for c in self.boxes))
