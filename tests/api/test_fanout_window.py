"""The coalescing window (`fanout_window`): a view fans out at once, then at
most once per window, with everything that came during it, and keeps no
timer once frames stop. The views and the ring are real; the fan-out is a
recorder standing in for FLV/RTP (they only see `feed`)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any, Iterator

import pytest

from hub.api.play.consumer import Consumer
from hub.api.play.views import StreamView, StreamViews
from hub.api.shards import ShardLinks
from hub.config import Config
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.ring import RingEntry, RingWriter, cleanup_stale


class OneShard(ShardLinks):
    def __init__(self, desc: StreamDesc) -> None:
        super().__init__(1)
        self.desc = desc

    async def request(self, path: str, msg: Any, timeout: float = 5.0) -> Any:
        return self.desc.to_wire()

    def notify(self, path: str, msg: Any) -> None:
        pass


class Recorder:
    """A fan-out that records each batch it is fed (its seqs)."""

    def __init__(self, view: StreamView) -> None:
        self.consumers: list[Consumer] = []
        self.batches: list[list[int]] = []

    def feed(self, entries: list[RingEntry]) -> None:
        self.batches.append([e.seq for e in entries])

    def on_desc(self, desc: StreamDesc) -> None:
        pass


@pytest.fixture
def ring() -> Iterator[RingWriter]:
    name = f"hubtest-{uuid.uuid4().hex[:12]}"
    writer = RingWriter.create(name, slots=64, data_size=1 << 16)
    yield writer
    writer.close()
    cleanup_stale(name)


async def _view(ring: RingWriter, window_ms: int) -> tuple[StreamViews, StreamView, Recorder]:
    desc = StreamDesc(7, "/live/w", ring.name, 0, "v=0\r\n", [TrackDesc(0, "video", "H264", 96, 90000)])
    views = StreamViews(OneShard(desc), dataclasses.replace(Config(), fanout_window=window_ms))
    view = await views.open("/live/w")
    return views, view, view.fanout("rec", Recorder)


def _write(ring: RingWriter, views: StreamViews, n: int = 1) -> None:
    for _ in range(n):
        seq = ring.write(b"x" * 100, track=0, keyframe=False, pts=0, dts=0)
        views.on_wake({7: seq})  # as the shard's wake notice does


def test_without_a_window_every_wake_fans_out(ring: RingWriter) -> None:
    async def scenario() -> None:
        views, view, rec = await _view(ring, 0)
        _write(ring, views, 3)
        assert rec.batches == [[1], [2], [3]]
        assert view._window is None
        views.close()

    asyncio.run(scenario())


def test_a_window_gathers_what_came_during_it(ring: RingWriter) -> None:
    async def scenario() -> None:
        views, view, rec = await _view(ring, 40)
        _write(ring, views)
        assert rec.batches == [[1]], "the first frame after a quiet time goes at once"
        _write(ring, views, 3)
        assert rec.batches == [[1]], "nothing more within the window"
        await asyncio.sleep(0.2)
        assert rec.batches == [[1], [2, 3, 4]], "one batch at the window's end"
        await asyncio.sleep(0.1)
        assert view._window is None, "no timer once frames stop"
        _write(ring, views)
        assert rec.batches[-1] == [5]
        views.close()
        assert view._window is None

    asyncio.run(scenario())


def test_the_end_of_a_stream_flushes_the_window(ring: RingWriter) -> None:
    async def scenario() -> None:
        views, view, rec = await _view(ring, 80)
        _write(ring, views, 3)
        assert rec.batches == [[1]]
        views.on_stream_ended(7)
        assert rec.batches == [[1], [2, 3]] and view.closed and view._window is None

    asyncio.run(scenario())
