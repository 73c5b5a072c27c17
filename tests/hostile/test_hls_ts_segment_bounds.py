"""The TS segmenter's open segment grew as long as its publisher liked.

A TS segment was cut only at a keyframe at least `hlsfragment` after the
segment's start, so the shard buffered without end, for as long as the
stream played, a stream whose publisher
- sent one keyframe and then none (a keyframe never coming),
- sent every frame with the same timestamp (the segment never aged), or
- jumped its timestamps back (every later keyframe "before" the segment).
3,000 frames of 10 KB with frozen timestamps: 29.6 MiB buffered, no
segment. Now a segment is cut without a keyframe past `MAX_SEGMENT` (60 s)
or `MAX_SEGMENT_BYTES` (32 MiB), and at a keyframe whose time went back
(the next segment is a discontinuity).

In one process: a shard stream written through its ring, the real
`TsSegmenter` reading it as it does for HLS players.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from pathlib import Path
from typing import Callable

from hub.shard import hls_ts
from hub.shard.hls_ts import MAX_SEGMENT, MAX_SEGMENT_BYTES, TsSegmenter
from tests.shard.ingest_helpers import PPS, SPS, make_streams, tracks

FPS = 25
TICKS = 90000 // FPS


def _frame(size: int, i: int) -> bytes:
    return struct.pack(">I", size + 1) + b"\x65" + i.to_bytes(4, "big") * (size // 4)


def _segment(tmp_path: Path, frames: int, size: int,
             timing: Callable[[int], tuple[int, bool]]) -> tuple[int, str]:
    """Write `frames` frames (`timing(i)`: dts in 90 kHz, keyframe); the
    largest open segment seen (bytes), and the playlist at the end."""

    async def run() -> tuple[int, str]:
        streams = make_streams()
        video = dataclasses.replace(tracks()[0], sps=SPS, pps=PPS)
        stream = streams.publish("/live/x", "", [video], "test", None)
        seg = TsSegmenter(stream, tmp_path / "live/x", 2.0)
        stream.add_tap(seg.pump)
        largest = 0
        try:
            for i in range(frames):
                dts, key = timing(i)
                stream.write(0, _frame(size, i), dts, dts, key)
                if i % 8 == 7:
                    await asyncio.sleep(0)  # the segmenter (a tap) runs once per loop turn
                    largest = max(largest, len(seg._buf))
            await asyncio.sleep(0)
            playlist = (seg.folder / hls_ts.PLAYLIST).read_text() if seg.first_segment.is_set() else ""
        finally:
            seg.close()
            streams.close(stream)
        return largest, playlist

    return asyncio.run(run())


def test_frozen_timestamps_are_cut_by_size(tmp_path: Path) -> None:
    # ~40 MiB, every frame at time 0, a keyframe every second.
    largest, playlist = _segment(tmp_path, 1000, 40_000, lambda i: (0, i % FPS == 0))
    assert largest <= MAX_SEGMENT_BYTES + 64 * 1024, largest
    assert "#EXTINF:" in playlist


def test_a_keyframe_never_coming_is_cut_by_time(tmp_path: Path) -> None:
    # 70 s after one keyframe; 1 KB frames (so only the time bound can cut).
    largest, playlist = _segment(tmp_path, 70 * FPS, 1_000, lambda i: (i * TICKS, i == 0))
    assert largest < (MAX_SEGMENT + 1) * FPS * 1_300, largest
    assert "#EXTINF:60.000," in playlist


def test_a_time_line_going_back_is_cut_at_its_next_keyframe(tmp_path: Path) -> None:
    # 10 s, then the time line restarts 1,000 s earlier (keyframes every second).
    def timing(i: int) -> tuple[int, bool]:
        t = i * TICKS if i < 10 * FPS else (i - 10 * FPS) * TICKS - 1000 * 90000
        return t, i % FPS == 0

    largest, playlist = _segment(tmp_path, 20 * FPS, 1_000, timing)
    assert largest < 3 * FPS * 1_300, largest  # segments of 2 s on both sides of the jump
    assert "#EXT-X-DISCONTINUITY" in playlist
