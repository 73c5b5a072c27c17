"""A stream's ring read in the owning shard, into an fMP4 segmenter.

What the fMP4 HLS segmenter and the recorder share: an in-process ring
reader (one of the stream's taps, run once per loop turn after writes), the
sans-IO `Fmp4Segmenter` fed with each entry and the wall clock, and a
`reset()` of the segmenter when the stream's description changes (new
parameter sets: a new init segment). Subclasses handle the parts and
segments it returns.

A stream whose tracks cannot go into fMP4 yet (no parameter sets) waits for
its next description; one with no such track at all stays idle.
"""

from __future__ import annotations

import logging
import time

from ..errors import ProtocolError
from ..media.mp4 import Fmp4Part, Fmp4Segment, Fmp4Segmenter
from ..ring import RingReader
from .stream import Stream

log = logging.getLogger("hub.shard.fmp4")

#: Ring entries read per pass (the rest come on the next pass of the same turn).
READ_BATCH = 512


class Fmp4Feed:
    """Attach to ``stream``'s ring at its last keyframe; `pump()` reads what is new."""

    def __init__(self, stream: Stream, *, part_target: float, segment_target: float,
                 window: int = 7, segment_bytes: bool = True, segment_wall: float | None = None,
                 segment_max_bytes: int | None = None) -> None:
        self.stream = stream
        self.closed = False
        self.malformed = 0  # video units dropped by the segmenter(s), not AVCC
        self._part_target = part_target
        self._segment_target = segment_target
        self._window = window
        self._segment_bytes = segment_bytes
        self._segment_wall = segment_wall
        self._segment_max_bytes = segment_max_bytes
        self._reader = RingReader.attach(stream.ring.name)
        self._reader.seek_last_keyframe()
        self._version = stream.version
        self.segmenter: Fmp4Segmenter | None = None
        self._build()

    def _build(self) -> None:
        try:
            if self.segmenter is None:
                self.segmenter = Fmp4Segmenter(self.stream.tracks, part_target=self._part_target,
                                               segment_target=self._segment_target, window=self._window,
                                               segment_bytes=self._segment_bytes,
                                               segment_wall=self._segment_wall,
                                               segment_max_bytes=self._segment_max_bytes)
            else:
                self._handle(self.segmenter.reset(self.stream.tracks))
        except ProtocolError as e:
            # What was open is lost with the old tracks; a later description may do.
            log.info("%s: no fMP4 for these tracks: %s", self.stream.path, e.message)
            self.segmenter = None
            return
        self.started()

    def pump(self) -> None:
        """Feed whatever the ring has that this reader has not seen."""
        if self.closed:
            return
        if self._version != self.stream.version:
            self._version = self.stream.version
            self._build()
        now = time.time()
        while entries := self._reader.read(READ_BATCH):
            seg = self.segmenter
            if seg is None:
                continue  # drained: nothing to write them into
            malformed = seg.malformed
            for e in entries:
                events = seg.push(e.track, e.pts, e.dts, e.keyframe, e.data, now)
                if events:
                    self._handle(events)
                if self.closed:
                    return
            if seg.malformed != malformed:
                self._malformed(seg.malformed - malformed)

    def _malformed(self, n: int) -> None:
        """Video units the segmenter dropped (not AVCC): counted, logged once."""
        self.malformed += n
        if self.malformed == n:
            log.warning("%s: dropping video units with bad NAL lengths from %s", self.stream.path,
                        type(self).__name__)

    def _handle(self, events: list[Fmp4Part | Fmp4Segment]) -> None:
        for ev in events:
            if isinstance(ev, Fmp4Segment):
                self.on_segment(ev)
            else:
                self.on_part(ev)
            if self.closed:
                return
        self.handled()

    def finish(self) -> None:
        """End of stream: the open part and segment are closed and handled."""
        if self.segmenter is not None and not self.closed:
            self._handle(self.segmenter.finish())

    def detach(self) -> None:
        """Stop reading: off the stream's taps, then the ring is released."""
        self.closed = True
        self.stream.remove_tap(self.pump)
        self._reader.close()

    # -- for subclasses ------------------------------------------------------------------
    def started(self) -> None:
        """A (new) segmenter is ready: its ``init`` is the init segment to use."""

    def on_part(self, part: Fmp4Part) -> None:
        """A part was completed."""

    def on_segment(self, segment: Fmp4Segment) -> None:
        """A segment was completed (after its last part)."""

    def handled(self) -> None:
        """After the parts and segments of one entry: the segmenter's state is theirs."""
