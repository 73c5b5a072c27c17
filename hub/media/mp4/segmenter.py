"""Ring entries in, fMP4 parts and segments out: what LL-HLS and recording share.

Sans-IO: `push()` takes one ring entry (and, if the caller wants program
date-times, the wall-clock time it belongs to) and returns the events it
completed, in order:

- `Fmp4Part`: one ``moof`` + ``mdat`` of about ``part_target`` seconds
  (``independent`` when it starts with a keyframe) — an LL-HLS partial
  segment, and what a recorder appends to its file;
- `Fmp4Segment`: after the last part of a segment; its bytes are ``styp``
  plus its parts' bytes.

Timing follows the reference track — the video track if there is one, else
the audio track. A reference decode time that goes back or leaps forward
by more than `MAX_JUMP` closes the open segment; the next one (from the
next keyframe) is a discontinuity. A sample's duration is the next sample's decode time minus
its own, so a part is emitted when the first sample after it arrives, and
video waits for its first keyframe. Segments are cut at the first keyframe
at or after ``segment_target`` (audio-only: at ``segment_target``); past
`MAX_SEGMENT` without a keyframe a segment is cut anyway, and so is a part
(with ``segment_bytes``, the segment) holding `MAX_HELD_BYTES` of media
whatever its timestamps say (frozen ones never age it), so nothing grows
without bound. A caller that cannot trust the media clock for a segment's
end (a recorder: a segment is a file, which retention never deletes while
it is open) bounds it by wall clock and bytes too (``segment_wall``,
``segment_max_bytes``): past either it is cut at the next sample, keyframe
or not, and if the media clock has stopped telling time the next segment's
program date-time is the wall clock's. A video unit that is not whole AVCC is dropped
(``malformed`` counts them). Parts are whole frames: the part duration is
``part_target`` rounded to a whole number of the first frame durations seen,
so at a steady frame rate every part but a segment's last has the same
length and ``part_target`` (the advertised PART-TARGET) is exact.

The segmenter keeps the last ``window`` segments' metadata (no bytes) and
the open segment's parts: the state the LL-HLS playlist is rendered from
and blocking reloads are decided on (`hub.media.hls`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

from hub.errors import ProtocolError
from hub.media.access_unit import avcc_ok
from hub.media.mp4.fragment import Fmp4Sample, TrackRun, styp, write_fragment
from hub.media.mp4.init import Mp4Track, init_segment, mp4_track
from hub.media.stream_desc import AUDIO_AAC, VIDEO_CODECS, TrackDesc

__all__ = ["PartInfo", "SegmentInfo", "Fmp4Part", "Fmp4Segment", "Fmp4Segmenter",
           "MAX_SEGMENT", "MAX_HELD_BYTES", "MAX_PART_SAMPLES", "MAX_JUMP"]

#: A segment is cut without a keyframe past this many seconds (bounds its parts list).
MAX_SEGMENT = 60.0
#: Media bytes held (the open part's samples; with ``segment_bytes`` the open
#: segment's parts too) past which the part (the segment) is cut.
MAX_HELD_BYTES = 32 * 1024 * 1024
#: Audio samples one part takes while the video track is silent; later ones are dropped.
MAX_PART_SAMPLES = 1024
#: Seconds between two reference samples beyond which the time line counts as broken.
MAX_JUMP = 10.0

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class PartInfo:
    number: int  # counts every part of the stream from 0, never reused (part URIs)
    sequence: int  # media sequence number of the parent segment
    index: int  # position in the parent segment
    independent: bool  # starts with a keyframe
    start: float  # seconds, the reference track's decode time
    duration: float  # seconds
    program_date_time: float | None = None  # wall clock of its start (epoch seconds), if known


@dataclass(frozen=True, slots=True)
class Fmp4Part(PartInfo):
    chunks: tuple[Buffer, ...] = ()  # moof + mdat header, then the samples' own buffers
    size: int = 0

    def info(self) -> PartInfo:
        return PartInfo(self.number, self.sequence, self.index, self.independent, self.start,
                        self.duration, self.program_date_time)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    sequence: int
    start: float  # seconds, the reference track's decode time
    duration: float
    parts: tuple[PartInfo, ...]
    independent: bool
    discontinuity: bool  # first segment after `reset()`
    init_version: int  # which init segment it needs (bumped by `reset()`)
    program_date_time: float | None  # wall clock of its start (epoch seconds), if known


@dataclass(frozen=True, slots=True)
class Fmp4Segment(SegmentInfo):
    chunks: tuple[Buffer, ...] = ()  # styp, then every part's chunks (none without `segment_bytes`)
    size: int = 0


class _Pending(NamedTuple):
    data: Buffer
    pts: int
    dts: int
    key: bool


class Fmp4Segmenter:
    """One per stream (per description: call `reset()` when the tracks change)."""

    def __init__(self, tracks: Sequence[TrackDesc], *, part_target: float = 0.2,
                 segment_target: float = 2.0, window: int = 7, first_sequence: int = 0,
                 segment_bytes: bool = True, segment_wall: float | None = None,
                 segment_max_bytes: int | None = None) -> None:
        if not 0 < part_target <= segment_target:
            raise ValueError("need 0 < part_target <= segment_target")
        if window < 1:
            raise ValueError("window must hold at least one segment")
        self.part_target_config = part_target
        # False: a segment's bytes are not kept (its `Fmp4Segment.chunks` is
        # empty): a caller that writes each part as it comes (the recorder)
        # holds one part, not a whole segment of up to MAX_SEGMENT seconds.
        self.segment_bytes = segment_bytes
        # Bounds that do not trust the media clock (a recording's file): a
        # segment is cut, keyframe or not, once open ``segment_wall`` seconds
        # of the wall clock given to `push` or holding ``segment_max_bytes``.
        self.segment_wall = segment_wall
        self.segment_max_bytes = segment_max_bytes
        self.forced_cuts = 0  # segments cut by those bounds
        self.segment_target = segment_target
        self.segments: deque[SegmentInfo] = deque(maxlen=window)
        self.discontinuity_sequence = 0
        self.next_part_number = 0
        self.init_version = 0
        self.ended = False
        self.dropped = 0  # audio samples over MAX_PART_SAMPLES
        self.malformed = 0  # video units that are not AVCC (a NAL length past the end), dropped
        self._sequence = first_sequence
        self._parts: list[Fmp4Part] = []
        self._discontinuity = False
        self._target = math.ceil(segment_target)
        self._part_ticks = 0
        self._ts = 0
        self._setup(tracks)

    # -- tracks -------------------------------------------------------------

    def _setup(self, tracks: Sequence[TrackDesc]) -> None:
        self.skipped: list[tuple[int, str]] = []
        video: tuple[int, Mp4Track] | None = None
        audio: tuple[int, Mp4Track] | None = None
        for t in tracks:
            if video is None and t.codec in VIDEO_CODECS:
                try:
                    video = (t.index, mp4_track(t, 1))
                except ProtocolError as e:
                    self.skipped.append((t.index, e.message))
        for t in tracks:
            if audio is None and t.codec == AUDIO_AAC:
                try:
                    audio = (t.index, mp4_track(t, 2 if video else 1))
                except ProtocolError as e:
                    self.skipped.append((t.index, e.message))
        if video is None and audio is None:
            raise ProtocolError("no track that fragmented MP4 can carry")
        self.video = video[1] if video else None
        self.audio = audio[1] if audio else None
        self._kinds: dict[int, str] = {}
        if video:
            self._kinds[video[0]] = "video"
        if audio:
            self._kinds[audio[0]] = "audio"
        self.tracks = [t for t in (self.video, self.audio) if t is not None]
        self.init = init_segment(self.tracks)
        ref = self.video or self.audio
        assert ref is not None
        if ref.timescale != self._ts:
            self._part_ticks = 0  # the part length is kept across a reset in the same clock
        self._ts = ref.timescale
        self._seg_ticks = max(1, round(self.segment_target * self._ts))
        self._max_seg_ticks = max(self._seg_ticks, round(MAX_SEGMENT * self._ts))
        self._frame = 0
        if self.video is None and self.audio is not None:
            self._learn_frame(self.audio.frame_duration)
        self._started = False
        self._pending: _Pending | None = None
        self._vsamples: list[Fmp4Sample] = []
        self._vbase = 0
        self._audio_in: list[tuple[Buffer, int]] = []
        self._held = 0  # media bytes in _vsamples, _audio_in (and, with segment_bytes, _parts)
        self._seg_size = 0  # bytes of the open segment's closed parts
        self._seg_wall: float | None = None  # wall clock the open segment began at
        self._seg_start = self._part_start = self._last_dts = 0
        self._part_independent = self._seg_independent = False
        self._anchor: tuple[int, float] | None = None

    # -- state the playlist reads --------------------------------------------

    @property
    def part_target(self) -> float:
        """Seconds: ``part_target`` rounded to whole frames once a frame duration is known."""
        return self._part_ticks / self._ts if self._part_ticks else self.part_target_config

    @property
    def target_duration(self) -> int:
        """Whole seconds: at least ``segment_target`` and every segment ever cut,
        rounded to the nearest second (it never goes down)."""
        return self._target

    @property
    def current(self) -> SegmentInfo | None:
        """The open segment with the parts it has so far (None before the first keyframe)."""
        if not self._started:
            return None
        parts = tuple(p.info() for p in self._parts)
        return SegmentInfo(self._sequence, self._seg_start / self._ts,
                           sum(p.duration for p in parts), parts, self._seg_independent,
                           self._discontinuity, self.init_version, self._pdt())

    # -- input ---------------------------------------------------------------

    def push(self, track: int, pts: int, dts: int, keyframe: bool, data: Buffer,
             now: float | None = None) -> list[Fmp4Part | Fmp4Segment]:
        """Take one ring entry; return the parts and segments it completed."""
        events: list[Fmp4Part | Fmp4Segment] = []
        kind = self._kinds.get(track)
        if kind is None or self.ended or not data:
            return events
        if kind == "video" and not avcc_ok(data):
            self.malformed += 1  # a decoder would choke on it: as if it never came
            return events
        reference = kind == "video" or self.video is None
        if reference and self._started and self._jumped(dts):
            # The time line broke (a publisher restarted under the same
            # description): close what is open, start over as a discontinuity.
            events += self._flush()
            self._discontinuity = True
        if kind == "video":
            if not self._started:
                if keyframe:
                    self._begin(dts, now)
                    self._pending = _Pending(data, pts, dts, True)
                return events
            prev = self._pending
            assert prev is not None
            duration = dts - prev.dts
            self._add_video(prev, duration)
            if duration:
                self._learn_frame(duration)
            self._cut(dts, keyframe, events, now)
            self._pending = _Pending(data, pts, dts, keyframe)
        elif self.video is None:
            if not self._started:
                self._begin(dts, now)
            else:
                self._cut(dts, True, events, now)
            self._audio_in.append((data, dts))
            self._held += len(data)
            self._last_dts = dts
        elif self._started:
            if len(self._audio_in) >= MAX_PART_SAMPLES:
                self.dropped += 1
            else:
                self._audio_in.append((data, dts))
                self._held += len(data)
        return events

    def finish(self) -> list[Fmp4Part | Fmp4Segment]:
        """End of stream: close the open part and segment; later pushes are ignored."""
        events = self._flush()
        self.ended = True
        return events

    def reset(self, tracks: Sequence[TrackDesc]) -> list[Fmp4Part | Fmp4Segment]:
        """New tracks (a new publisher, new parameter sets): close what is open,
        build a new init segment (``init_version`` + 1); the next segment is a
        discontinuity. Sequence and part numbers go on."""
        events = self._flush()
        self._setup(tracks)
        self.init_version += 1
        self._discontinuity = True
        return events

    # -- internals -----------------------------------------------------------

    def _jumped(self, dts: int) -> bool:
        """A reference decode time that goes back, or forward by more than `MAX_JUMP`."""
        last = self._pending.dts if self._pending is not None else self._last_dts
        return dts < last or dts - last > MAX_JUMP * self._ts

    def _begin(self, dts: int, now: float | None) -> None:
        self._started = True
        self._seg_start = self._part_start = self._last_dts = dts
        self._part_independent = self._seg_independent = True
        self._seg_wall = now
        if now is not None:
            self._anchor = (dts, now)

    def _pdt(self, at: int | None = None) -> float | None:
        """Wall clock of ``at`` (default: the open segment's start) from the anchor."""
        if self._anchor is None:
            return None
        return self._anchor[1] + ((self._seg_start if at is None else at) - self._anchor[0]) / self._ts

    def _learn_frame(self, duration: int) -> None:
        self._frame = duration
        if not self._part_ticks:
            target = self.part_target_config * self._ts
            self._part_ticks = max(1, round(target / duration)) * duration

    def _add_video(self, s: _Pending, duration: int) -> None:
        if not self._vsamples:
            self._vbase = s.dts
        self._vsamples.append(Fmp4Sample(s.data, duration, s.pts - s.dts, s.key))
        self._held += len(s.data)

    def _forced(self, now: float | None) -> bool:
        """The open segment is past ``segment_wall`` or ``segment_max_bytes``."""
        wall = self.segment_wall
        if wall is not None and now is not None and self._seg_wall is not None and now - self._seg_wall >= wall:
            return True
        limit = self.segment_max_bytes
        return limit is not None and self._seg_size + self._held >= limit

    def _cut(self, dts: int, key: bool, events: list[Fmp4Part | Fmp4Segment], now: float | None = None) -> None:
        elapsed = dts - self._seg_start
        overgrown = self._held >= MAX_HELD_BYTES
        forced = self._forced(now)
        if ((key and elapsed >= self._seg_ticks) or elapsed >= self._max_seg_ticks
                or (overgrown and self.segment_bytes) or forced):
            self._close_part(dts, events)
            self._close_segment(dts, events)
            self._seg_start = self._part_start = dts
            self._part_independent = self._seg_independent = key
            self._seg_wall = now
            if forced:
                self.forced_cuts += 1
                pdt = self._pdt(dts)
                if now is not None and (pdt is None or abs(now - pdt) > 1.0):
                    # The media clock stopped telling time (frozen timestamps):
                    # the next segment's wall clock is the wall clock's.
                    self._anchor = (dts, now)
            return
        in_part = dts - self._part_start
        if self._part_ticks:
            due = in_part + self._frame // 2 >= self._part_ticks
        else:
            due = in_part >= self.part_target_config * self._ts
        if due or overgrown:
            self._close_part(dts, events)
            self._part_start = dts
            self._part_independent = key

    def _audio_run(self) -> TrackRun | None:
        a = self.audio
        if a is None or not self._audio_in:
            return None
        items = self._audio_in
        samples = []
        for i, (data, dts) in enumerate(items):
            step = items[i + 1][1] - dts if i + 1 < len(items) else 0
            samples.append(Fmp4Sample(data, step if step > 0 else a.frame_duration, 0, True))
        return TrackRun(a.track_id, items[0][1], samples, False)

    def _close_part(self, end: int, events: list[Fmp4Part | Fmp4Segment]) -> None:
        runs = []
        if self.video is not None and self._vsamples:
            runs.append(TrackRun(self.video.track_id, self._vbase, self._vsamples, True))
        audio = self._audio_run()
        if audio is not None:
            runs.append(audio)
        if not runs:
            return
        chunks = tuple(write_fragment(self.next_part_number + 1, runs))
        part = Fmp4Part(self.next_part_number, self._sequence, len(self._parts),
                        self._part_independent, self._part_start / self._ts,
                        max(0, end - self._part_start) / self._ts, self._pdt(self._part_start),
                        chunks, sum(len(c) for c in chunks))
        self.next_part_number += 1
        self._seg_size += part.size
        self._parts.append(part if self.segment_bytes else replace(part, chunks=()))
        self._vsamples = []
        self._audio_in = []
        if not self.segment_bytes:
            self._held = 0
        events.append(part)

    def _close_segment(self, end: int, events: list[Fmp4Part | Fmp4Segment]) -> None:
        if not self._parts:
            return
        head = styp()
        chunks = (head,) + tuple(c for p in self._parts for c in p.chunks) if self.segment_bytes else ()
        duration = max(0, end - self._seg_start) / self._ts
        seg = Fmp4Segment(self._sequence, self._seg_start / self._ts, duration,
                          tuple(p.info() for p in self._parts), self._seg_independent,
                          self._discontinuity, self.init_version, self._pdt(),
                          chunks, len(head) + sum(p.size for p in self._parts))
        events.append(seg)
        if len(self.segments) == self.segments.maxlen and self.segments[0].discontinuity:
            self.discontinuity_sequence += 1
        self.segments.append(SegmentInfo(seg.sequence, seg.start, seg.duration, seg.parts,
                                         seg.independent, seg.discontinuity, seg.init_version,
                                         seg.program_date_time))
        # rfc8216bis 6.2.1: a segment's duration rounded to the nearest second.
        self._target = max(self._target, math.floor(round(duration, 3) + 0.5))
        self._sequence += 1
        self._parts = []
        self._held = 0
        self._seg_size = 0
        self._discontinuity = False

    def _flush(self) -> list[Fmp4Part | Fmp4Segment]:
        events: list[Fmp4Part | Fmp4Segment] = []
        if not self._started:
            return events
        if self._pending is not None:
            p = self._pending
            self._add_video(p, self._frame)
            end = p.dts + self._frame
            self._pending = None
        else:
            end = self._last_dts + (self.audio.frame_duration if self.audio else 0)
        self._close_part(end, events)
        self._close_segment(end, events)
        self._started = False
        return events
