"""A publisher with frozen timestamps kept one recording file open forever.

A recording's file is a segment of its segmenter, cut by the media clock
(at the first keyframe past the rule's length, or at `MAX_SEGMENT`
without one). A publisher repeating one decode time never ages it: the
file never closed, and retention, which never deletes an open file (nor a
path's newest), could not act; one publisher could fill the disk. Now an
open file is closed past `FILE_WALL_MARGIN` times its longest length of
wall clock, or past `FILE_MAX_BYTES`, keyframe or not, and the next file
is named by the wall clock (the media clock stopped telling it).

In one process: a shard stream, the real `RecordManager` (retention 3 MB
on the path), frames of 20 KB all at decode time 0; the recorder's wall
clock is the test's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub.shard import fmp4_feed, record
from hub.shard.record import RecordManager
from hub.store.recordings import RecordRule, RecordTable, list_recordings
from tests.shard.ingest_helpers import PPS, SPS, make_streams, tracks

FRAME = 20_000
T0 = 1_700_000_000.0


def _run(tmp_path: Path, frames: int, wall_step: float) -> tuple[list[record.RecordingFile], int, int, list[str]]:
    clock = [T0]

    async def run() -> tuple[int, int, list[str]]:
        streams = make_streams()
        rule = RecordRule("/cam/", segment=10.0, max_bytes=3_000_000)
        mgr = RecordManager(tmp_path, RecordTable([rule]), 0, 1)
        streams.on_stream_opened.append(mgr.stream_opened)
        streams.on_stream_closed.append(mgr.stream_closed)
        video = dataclasses.replace(tracks()[0], sps=SPS, pps=PPS)
        stream = streams.publish("/cam/a", "", [video], "test", None)
        names = set()
        for i in range(frames):
            frame = struct.pack(">I", FRAME + 1) + b"\x65" + i.to_bytes(4, "big") * (FRAME // 4)
            stream.write(0, frame, 0, 0, i % 25 == 0)  # every frame at time 0
            await asyncio.sleep(0)  # the recorder (a tap) runs once per loop turn
            clock[0] += wall_step
            for rec in mgr.recorders.values():
                names.add(rec.name)
        streams.close(stream)  # the open part is written, the file closed
        await mgr.aclose()  # closes and retention, in the file thread
        return mgr.counters.files, mgr.counters.deleted, sorted(n for n in names if n)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fmp4_feed, "time", SimpleNamespace(time=lambda: clock[0]))
        opened, deleted, names = asyncio.run(run())
    return list_recordings(tmp_path / "cam" / "a"), opened, deleted, names  # type: ignore[return-value]


def test_a_frozen_clock_file_closes_by_wall_clock(tmp_path: Path) -> None:
    # 10 s rule: a file may run 2 x max(10, 60) = 120 s of wall clock. 300
    # frames 1 s apart (6 MB): segments are cut at 120 s and 240 s, so three
    # files (the last one closed by the stream's end).
    files, opened, deleted, names = _run(tmp_path, 300, 1.0)
    assert opened == 3, (opened, names)
    assert deleted >= 1  # retention (3 MB) could act on the closed files
    assert names == ["2023-11-14_22-13-20.mp4", "2023-11-14_22-15-20.mp4"], names  # wall-clock names
    assert sum(f.size for f in files) < 3_000_000 + 3 * 1024 * 1024


def test_a_frozen_clock_file_closes_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "FILE_MAX_BYTES", 1_000_000)
    # 40 ms apart: 12 s of wall clock, 6 MB: cut every ~1 MB.
    files, opened, deleted, _ = _run(tmp_path, 300, 0.04)
    assert opened >= 5, opened
    assert deleted >= 1
    assert all(f.size <= 1_000_000 + FRAME + 4096 for f in files), [f.size for f in files]
