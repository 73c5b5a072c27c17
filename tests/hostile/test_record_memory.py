"""A recording held its whole open file's media in the shard's memory.

The recorder writes each 1 s fragment to its file as it completes, yet its
segmenter also kept every fragment's bytes until the segment (the file)
closed, to build a segment nobody reads: a stream recorded under a 60 s
rule held up to 60 s of its media, one under a 3600 s rule up to an hour,
at whatever bit rate its publisher sends (a 4 Mbit/s stream: ~14 MiB after
30 s). Now the recorder's segmenter keeps no segment bytes: one fragment.

In one process: a shard stream, the real `RecordManager`, 30 s of 20 KB
frames at 25 fps written through the ring.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import tracemalloc
from pathlib import Path

from hub.media.mp4.index import index_file
from hub.shard.record import RecordManager
from hub.store.recordings import RecordRule, RecordTable
from tests.shard.ingest_helpers import PPS, SPS, make_streams, tracks

FPS = 25
SECONDS = 30
FRAME = 20_000  # 4 Mbit/s


def test_a_recording_holds_one_fragment_not_its_file(tmp_path: Path) -> None:
    async def run() -> tuple[int, int, Path]:
        streams = make_streams()
        mgr = RecordManager(tmp_path, RecordTable([RecordRule("/cam/", segment=60.0)]), 0, 1)
        streams.on_stream_opened.append(mgr.stream_opened)
        streams.on_stream_closed.append(mgr.stream_closed)
        video = dataclasses.replace(tracks()[0], sps=SPS, pps=PPS)
        stream = streams.publish("/cam/a", "", [video], "test", None)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            peak = 0
            for i in range(FPS * SECONDS):
                frame = struct.pack(">I", FRAME + 1) + b"\x65" + i.to_bytes(4, "big") * (FRAME // 4)
                stream.write(0, frame, i * 3600, i * 3600, i % (2 * FPS) == 0)
                await asyncio.sleep(0)  # the recorder (a tap) runs once per loop turn
                if i % FPS == 0:
                    peak = max(peak, tracemalloc.get_traced_memory()[0] - base)
            held = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        (rec,) = mgr.recorders.values()
        path = rec.folder / rec.name
        streams.close(stream)
        await mgr.aclose()
        return held, peak, path

    held, peak, path = asyncio.run(run())
    # ~14 MiB of media went into the open file; the shard held ~14 MiB more
    # before, now a fragment or two (and the interpreter's own noise).
    assert max(held, peak) < 2 * 1024 * 1024, (held, peak)
    data = path.read_bytes()  # the file has every fragment all the same
    ix = index_file(lambda offset, n: data[offset:offset + n], len(data))
    assert round(ix.duration) == SECONDS
