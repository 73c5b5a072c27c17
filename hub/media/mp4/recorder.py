"""Recording files: one self-contained MP4 per segment, written part by part.

`RecordingFile` is sans-IO: the recorder feeds it the segmenter's parts and
writes (``os.writev``) what it returns. A file is the init segment followed
by the parts' fragments, so it plays on its own and, cut short by a crash,
plays up to its last whole fragment. Decode times are moved so the file
starts at 0 — players then show the file's own length — which costs a copy
of each ``moof`` (a few hundred bytes); the samples are written from the
segmenter's buffers.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

from hub.media.mp4.fragment import fragment_bases, shift_fragment
from hub.media.mp4.init import Mp4Track
from hub.media.mp4.segmenter import Fmp4Part

__all__ = ["RecordingFile"]

Buffer = bytes | bytearray | memoryview


class RecordingFile:
    """The bytes of one recording file, in write order."""

    __slots__ = ("init", "_timescales", "_shifts", "size", "duration")

    def __init__(self, init: bytes, tracks: Sequence[Mp4Track]) -> None:
        self.init = init
        self._timescales = {t.track_id: t.timescale for t in tracks}
        self._shifts: dict[int, int] | None = None
        self.size = 0
        self.duration = 0.0

    def part(self, part: Fmp4Part) -> list[Buffer]:
        """What to append for ``part`` (the init too, before the first part)."""
        out: list[Buffer] = []
        head = part.chunks[0]
        if self._shifts is None:
            # The earliest track of the first part starts at 0; the others
            # keep their offset from it, so audio and video stay in sync.
            bases = fragment_bases(head)
            origin = min(Fraction(b, self._timescales[t]) for t, b in bases.items())
            self._shifts = {t: -round(origin * ts) for t, ts in self._timescales.items()}
            out.append(self.init)
        out.append(shift_fragment(head, self._shifts))
        out += part.chunks[1:]
        self.size += sum(len(c) for c in out)
        self.duration += part.duration
        return out
