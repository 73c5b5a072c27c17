"""Recording files: one self-contained MP4 per segment, written part by part.

`RecordingFile` is sans-IO: the recorder feeds it the segmenter's parts and
writes (``os.writev``) what it returns. A file is the init segment followed
by the parts' fragments, so it plays on its own and, cut short by a crash,
plays up to its last whole fragment. Decode times are moved so the file
starts at 0 — players then show the file's own length — which costs a copy
of each ``moof`` (a few hundred bytes); the samples are written from the
segmenter's buffers.

When the first part's wall-clock time is known, a ``prft`` box (producer
reference time, ISO/IEC 14496-12 8.16.5) before its ``moof`` ties that
time to the reference track's decode time: where the recording starts, to
the millisecond (the file's name has whole seconds), for whoever joins
files later. Readers that do not know the box skip it.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from typing import Sequence

from hub.media.mp4.boxes import full_box
from hub.media.mp4.fragment import fragment_bases, shift_fragment
from hub.media.mp4.init import Mp4Track
from hub.media.mp4.segmenter import Fmp4Part

__all__ = ["RecordingFile", "prft", "ntp_to_unix", "NTP_UNIX_OFFSET"]

Buffer = bytes | bytearray | memoryview

#: Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01.
NTP_UNIX_OFFSET = 2_208_988_800


def prft(track_id: int, wall: float, media_time: int) -> bytes:
    """A version-1 ``prft``: ``wall`` (Unix seconds) as a 64-bit NTP timestamp
    for decode time ``media_time`` of ``track_id``."""
    ntp = round((wall + NTP_UNIX_OFFSET) * (1 << 32))
    return full_box(b"prft", 1, 0, struct.pack(">IQQ", track_id, ntp, media_time))


def ntp_to_unix(ntp: int) -> float:
    return ntp / (1 << 32) - NTP_UNIX_OFFSET


class RecordingFile:
    """The bytes of one recording file, in write order."""

    __slots__ = ("init", "_timescales", "_reference", "_shifts", "size", "duration")

    def __init__(self, init: bytes, tracks: Sequence[Mp4Track]) -> None:
        self.init = init
        self._timescales = {t.track_id: t.timescale for t in tracks}
        self._reference = next((t.track_id for t in tracks if t.kind == "video"), tracks[0].track_id)
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
            ref = self._reference
            if part.program_date_time is not None and ref in bases:
                out.append(prft(ref, part.program_date_time, max(0, bases[ref] + self._shifts[ref])))
        out.append(shift_fragment(head, self._shifts))
        out += part.chunks[1:]
        self.size += sum(len(c) for c in out)
        self.duration += part.duration
        return out
