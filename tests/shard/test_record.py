"""The shard's recorder in one process: a stream written, files as it goes.

A real clip (ffmpeg, H.264 + AAC) is written into a shard stream entry by
entry; the recorder, one of the stream's taps, writes a file per 2 s
segment; new codec parameters start a new file; the end of the stream
closes the last one; a failed write stops the recording only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
from pathlib import Path

import pytest

from hub.media.mp4.index import index_file
from hub.shard.record import RecordManager
from hub.store.recordings import RecordRule, RecordTable, parse_name
from tests.media.mp4.clips import Clip, make_ts, read_ts
from tests.shard.ingest_helpers import make_streams

pytestmark = pytest.mark.e2e  # ffmpeg makes the clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    folder = tmp_path_factory.mktemp("clip")
    make_ts(folder / "in.ts", "h264", 6.0)
    return read_ts(folder / "in.ts", "h264")


async def write(stream: object, entries: list, per_turn: int = 8) -> None:
    for i in range(0, len(entries), per_turn):
        for e in entries[i:i + per_turn]:
            stream.write(e.track, e.data, e.pts, e.dts, e.keyframe)  # type: ignore[attr-defined]
        await asyncio.sleep(0)  # the taps run once per loop turn


def indexed(path: Path) -> tuple[float, int]:
    data = path.read_bytes()
    ix = index_file(lambda offset, n: data[offset:offset + n], len(data))
    return ix.duration, len(ix.fragments)


def test_files_per_segment_new_file_on_new_parameters(tmp_path: Path, clip: Clip) -> None:
    async def run() -> RecordManager:
        streams = make_streams()
        mgr = RecordManager(tmp_path, RecordTable([RecordRule("/cam/", segment=2.0)]), 0, 1)
        streams.on_stream_opened.append(mgr.stream_opened)
        streams.on_stream_closed.append(mgr.stream_closed)
        stream = streams.publish("/cam/a", "", clip.tracks, "test", None)
        half = len(clip.entries) // 2
        await write(stream, clip.entries[:half])
        assert [r["path"] for r in mgr.stats()["recording"]] == ["/cam/a"]
        # New parameter sets (here: another picture size in the description).
        stream.update_tracks([dataclasses.replace(clip.tracks[0], width=320, height=240), clip.tracks[1]])
        await write(stream, clip.entries[half:])
        streams.close(stream)
        await mgr.aclose()
        return mgr

    mgr = asyncio.run(run())
    # Written faster than real time: the names (wall clock) of the two
    # descriptions' files interleave, and their last writes (closing in the
    # writer's thread) may land in either order: compare the pieces as a set.
    files = list((tmp_path / "cam/a").iterdir())
    assert all(parse_name(f.name) for f in files)
    durations = [indexed(f)[0] for f in files]
    # 3 s of the clip, then new parameters: 2 s + 1 s, then 2 s + 1 s again
    # (the last part of each piece is its last frame's duration short).
    assert len(files) == 4 and sorted(round(d) for d in durations) == [1, 1, 2, 2], durations
    stats = mgr.stats()
    assert stats["files"] == 4 and stats["errors"] == 0 and stats["active"] == 0
    assert stats["bytes"] == sum(f.stat().st_size for f in files)


def test_a_failed_write_stops_the_recording_not_the_stream(tmp_path: Path, clip: Clip,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    real = os.writev
    calls = {"n": 0}

    def full_disk(fd: int, chunks: list) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, chunks)

    monkeypatch.setattr("hub.shard.record.os.writev", full_disk)

    async def run() -> tuple[RecordManager, int]:
        streams = make_streams()
        mgr = RecordManager(tmp_path, RecordTable([RecordRule("/cam/", segment=2.0)]), 0, 1)
        streams.on_stream_opened.append(mgr.stream_opened)
        streams.on_stream_closed.append(mgr.stream_closed)
        stream = streams.publish("/cam/a", "", clip.tracks, "test", None)
        await write(stream, clip.entries)
        written = stream.ring.write_seq
        assert not stream.closed and mgr.recorders == {} and stream.taps == []
        streams.close(stream)
        await mgr.aclose()
        return mgr, written

    mgr, written = asyncio.run(run())
    assert written == len(clip.entries)  # every entry reached the ring
    assert mgr.counters.errors == 1 and calls["n"] == 3
    assert any(r.levelname == "ERROR" and "recording stopped" in r.message and "ENOSPC" in r.message
               for r in caplog.records), caplog.text
    (only,) = (tmp_path / "cam/a").iterdir()
    assert indexed(only)[1] == 2  # what was written before the failure plays
