"""Decode timestamps for video that arrives with presentation times only.

RTP carries one timestamp per access unit: its presentation time. With
B-frames, access units arrive in decode order with PTS going back and forth,
but FLV and MPEG-TS need a DTS that rises with every frame and never exceeds
the PTS. A stream without reordering keeps DTS = PTS. Once reordering shows
(a PTS below one already seen), DTS becomes a steady count of frame
durations running `offset` behind: the k-th frame in decode order gets the
k-th display slot, which is never later than its own PTS when the offset
covers the encoder's reorder depth (two frames: x264's b-pyramid default).
Lost frames make DTS lag; it catches up when it falls more than `MAX_LAG`
frames behind. The first reordered frames of a stream may briefly get a DTS
above their PTS (the switch cannot go back in time); players joining later
start clean.
"""

from __future__ import annotations

#: Reorder depth assumed, in frames, once B-frames are seen.
REORDER_FRAMES = 2
#: DTS never lags the newest PTS by more than this many frames.
MAX_LAG = 8


class DtsEstimator:
    __slots__ = ("frame_ticks", "reordering", "_last_pts", "_max_pts", "_last_dts")

    def __init__(self, frame_ticks: int | None = None) -> None:
        self.frame_ticks = frame_ticks if frame_ticks and frame_ticks > 0 else None
        self.reordering = False
        self._last_pts: int | None = None
        self._max_pts: int | None = None
        self._last_dts: int | None = None

    def dts(self, pts: int) -> int:
        """The DTS of the next access unit in decode order."""
        last_pts, max_pts, last_dts = self._last_pts, self._max_pts, self._last_dts
        if last_pts is not None:
            diff = pts - last_pts
            if diff > 0 and (self.frame_ticks is None or diff < self.frame_ticks):
                self.frame_ticks = diff
        if max_pts is not None and pts < max_pts:
            self.reordering = True
        self._last_pts = pts
        self._max_pts = pts if max_pts is None or pts > max_pts else max_pts
        d = self.frame_ticks
        if not self.reordering or d is None or last_dts is None:
            dts = pts if last_dts is None or pts > last_dts else last_dts + 1
        else:
            cand = last_dts + d
            newest = self._max_pts
            if newest - cand > MAX_LAG * d:  # frames were lost: catch up
                cand = newest - (REORDER_FRAMES + MAX_LAG // 2) * d
            dts = max(last_dts + 1, min(cand, pts))
        self._last_dts = dts
        return dts
