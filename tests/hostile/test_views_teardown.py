"""A front's stream views under churn and teardown, in one process.

Defect 2 at its root: the open of a stream is shared by everyone asking for
it, and the one who started it leaving must not cancel it for the others.
Defect 11 on the front's side: a stream's end (the ring closed, the view
closed) racing a wake-up, a joining player or a GOP read must not touch a
released ring. The owning shard is stood in for by a ShardLinks whose
`open_stream` answers from a real ring after a delay; the views, rings and
readers are the real ones.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest

from hub.api.play import views as views_mod
from hub.api.play.views import StreamViews
from hub.api.shards import ShardLinks
from hub.config import Config
from hub.errors import NotFound
from hub.ipc import messages as M
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.ring import RingWriter, cleanup_stale



class SlowShard(ShardLinks):
    """Answers open_stream for one ring after `delay`; records notices."""

    def __init__(self, desc: StreamDesc, delay: float) -> None:
        super().__init__(1)
        self.desc = desc
        self.delay = delay
        self.opens = 0
        self.notices: list[tuple[str, dict[str, Any]]] = []

    async def request(self, path: str, msg: Any, timeout: float = 5.0) -> Any:
        assert msg[0] is M.OPEN_STREAM
        self.opens += 1
        await asyncio.sleep(self.delay)
        return self.desc.to_wire()

    def notify(self, path: str, msg: Any) -> None:
        self.notices.append((msg[0].name, msg[1]))


@pytest.fixture
def ring() -> Any:
    name = f"hubtest-{uuid.uuid4().hex[:12]}"
    writer = RingWriter.create(name, slots=64, data_size=1 << 16)
    yield writer
    writer.close()
    cleanup_stale(name)


def _desc(ring: RingWriter) -> StreamDesc:
    return StreamDesc(7, "/live/v", ring.name, 0, "v=0\r\n", [TrackDesc(0, "video", "H264", 96, 90000)])


def test_the_open_survives_its_starter_leaving(ring: RingWriter) -> None:
    async def scenario() -> None:
        shard = SlowShard(_desc(ring), delay=0.2)
        views = StreamViews(shard, Config())
        starter = asyncio.ensure_future(views.open("/live/v"))
        await asyncio.sleep(0.01)
        others = [asyncio.ensure_future(views.open("/LIVE/v/")) for _ in range(5)]
        await asyncio.sleep(0.05)
        starter.cancel()  # the client that started the open disconnects
        got = await asyncio.wait_for(asyncio.gather(*others), 2.0)
        assert starter.cancelled()
        assert len({id(v) for v in got}) == 1 and not got[0].closed
        assert shard.opens == 1, "one open for everyone"
        views.close()

    asyncio.run(scenario())


def test_a_view_nobody_joined_is_closed_and_released(ring: RingWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views_mod, "UNUSED_VIEW_TTL", 0.2)

    async def scenario() -> None:
        shard = SlowShard(_desc(ring), delay=0.1)
        views = StreamViews(shard, Config())
        asker = asyncio.ensure_future(views.open("/live/v"))
        await asyncio.sleep(0.02)
        asker.cancel()  # every asker leaves while it opens
        await asyncio.sleep(0.5)
        assert views.by_id == {} and views.by_path == {}
        assert shard.notices == [("release_stream", {"stream_id": 7})]

    asyncio.run(scenario())


def test_stream_end_racing_reads_touches_no_released_ring(ring: RingWriter) -> None:
    async def scenario() -> None:
        shard = SlowShard(_desc(ring), delay=0.0)
        views = StreamViews(shard, Config())
        view = await views.open("/live/v")
        for i in range(10):
            ring.write(os.urandom(100), track=0, keyframe=i % 5 == 0, pts=i, dts=i)
        view.pump()
        # The end: the writer closes its ring, the shard's notice closes the
        # view, and a wake-up of the same turn arrives after it.
        ring.write(b"last", track=0, keyframe=False, pts=10, dts=10)
        ring.close(unlink=True)
        views.on_stream_ended(7)
        views.on_wake({7: ring.write_seq})
        view.pump()
        assert view.closed and view.reader.read() == [] and view.gop() == []
        with pytest.raises(NotFound):
            view.fanout("flv", lambda v: None)  # type: ignore[type-var]

    asyncio.run(scenario())
