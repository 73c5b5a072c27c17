"""StreamViews and StreamView with a real ring, a stand-in shard and fake
transports: one shared open per stream, what closing releases, the end of a
stream, an unused view's expiry and a description change reaching players."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from hub.api.play import views as views_mod
from hub.api.play.consumer import Consumer
from hub.api.play.flv import FlvFanout
from hub.api.play.views import StreamViews
from hub.config import Config
from hub.errors import NotFound
from hub.media.flv import TAG_VIDEO, FlvTag, parse_video
from hub.media.codec_config import avc_decoder_config

from .fakes import FakeTransport, OneShard, Stream, flv_tags, media, run
from tests.shard.ingest_helpers import SPS


def flv_player(views: StreamViews, view: views_mod.StreamView) -> tuple[Consumer, FakeTransport]:
    t = FakeTransport()
    c = Consumer(t, "FLV", "net=http-flv", on_close=view.drop_consumer)
    view.fanout("flv-http", lambda v: FlvFanout(v, ws=False)).join(c)
    return c, t


def test_concurrent_askers_share_one_open(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream, delay=0.05)
        views = StreamViews(shard, Config())
        got = await asyncio.gather(*(views.open(p) for p in ("/live/x", "/LIVE/x", "live/x/", "/live//x")))
        assert len({id(v) for v in got}) == 1
        assert shard.opens() == 1, "one open for everyone asking at once"
        assert views.by_path == {"/live/x": got[0]} and views.by_id == {stream.stream_id: got[0]}
        assert await views.open("/live/x") is got[0] and shard.opens() == 1, "an open view is reused"
        views.close()
        assert got[0].closed and views.by_path == {} and views.by_id == {}
        again = await views.open("/live/x")
        assert again is not got[0] and shard.opens() == 2, "a closed view is opened anew"
        views.close()

    run(main())


def test_a_stream_that_is_not_live_leaves_nothing_behind(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        with pytest.raises(NotFound):
            await views.open("/live/nothing")
        assert views.by_path == {} and views._opening == {}
        # The shard answered, but the ring was gone by the time we attached.
        stream.writer.close()
        with pytest.raises(NotFound):
            await views.open("/live/x")
        assert views.by_path == {} and views.by_id == {} and views._opening == {}

    run(main())


def test_the_last_player_leaving_closes_the_view_and_releases_the_stream(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        view = await views.open("/live/x")
        reader = view.reader
        a, ta = flv_player(views, view)
        b, tb = flv_player(views, view)
        stream.video(True, 0)
        views.on_wake({stream.stream_id: 1})
        sent_a = a.outbytes
        assert sent_a > 0 and sent_a == len(ta.out)
        a.close()
        assert not view.closed and view.consumers() == [b], "one player left, one stays"
        assert views.ended["flv"] == 1 and views.ended_out["/live/x"] == sent_a
        assert shard.notices == []
        tb.close()  # the client hangs up: the next fan-out notices
        stream.video(False, 3600)
        views.on_wake({stream.stream_id: 2})
        assert b.closed and view.closed
        assert reader.closed, "the ring is unmapped"
        assert shard.notices == [("release_stream", {"stream_id": stream.stream_id})]
        assert views.by_path == {} and views.by_id == {}
        assert views.ended["flv"] == 2
        views.on_wake({stream.stream_id: 3})  # a late wake for a closed view is ignored

    run(main())


def test_the_end_of_a_stream_delivers_what_is_left_then_closes_players(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        view = await views.open("/live/x")
        c, t = flv_player(views, view)
        head = t.take()
        stream.video(True, 0)
        _, last = stream.video(False, 3600)
        stream.end()
        views.on_stream_ended(stream.stream_id)  # no wake came for the last frames
        tags = flv_tags(t.take())
        assert [parse_video(x.data).payload for x in tags if x.tag_type == TAG_VIDEO][-1] == last
        assert head and c.closed and t.closing and view.closed and not t.aborted
        with pytest.raises(NotFound):
            view.fanout("flv-http", lambda v: FlvFanout(v, ws=False))

    run(main())


def test_a_ring_its_writer_closed_ends_the_view_at_the_next_wake(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        view = await views.open("/live/x")
        c, t = flv_player(views, view)
        stream.video(True, 0)
        stream.end()  # the shard closed the ring; only a wake reached this front
        views.on_wake({stream.stream_id: 1})
        assert media(flv_tags(t.take()[13:]))[-1][:3] == ("video", 0, True), "what was written still goes out"
        assert view.closed and c.closed and t.closing and views.by_path == {}
        assert shard.notices == [("release_stream", {"stream_id": stream.stream_id})]

    run(main())


def test_a_view_nobody_joins_expires(stream: Stream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views_mod, "UNUSED_VIEW_TTL", 0.05)

    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        unused = await views.open("/live/x")  # a DESCRIBE without PLAY
        await asyncio.sleep(0.15)
        assert unused.closed and shard.notices == [("release_stream", {"stream_id": stream.stream_id})]
        used = await views.open("/live/x")
        c, _t = flv_player(views, used)
        await asyncio.sleep(0.15)
        assert not used.closed and not c.closed, "a view with a player stays"
        views.close()
        assert c.closed and used.closed

    run(main())


def test_new_parameter_sets_reach_players_in_line(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        view = await views.open("/live/x")
        _c, t = flv_player(views, view)
        t.take()
        new_pps = bytes.fromhex("68ce3c80")
        stream.new_params(new_pps)
        stream.video(True, 0)
        views.on_wake({stream.stream_id: 1})
        for _ in range(20):  # the view asks the shard for the new description
            await asyncio.sleep(0)
            if view.desc.version == stream.desc.version:
                break
        assert ("describe", {"stream_id": stream.stream_id}) in shard.asked
        assert view.desc.tracks[0].pps == new_pps
        tags: list[FlvTag] = flv_tags(t.take())
        headers = [parse_video(x.data) for x in tags if x.tag_type == TAG_VIDEO and parse_video(x.data).packet_type == 0]
        assert [h.payload for h in headers] == [avc_decoder_config([SPS], [new_pps])]
        views.close()

    run(main())


def test_the_gop_is_read_from_the_last_keyframe_up_to_the_view(stream: Stream) -> None:
    async def main() -> None:
        views = StreamViews(OneShard(stream), Config())
        stream.video(True, 0)
        stream.video(False, 3600)
        view = await views.open("/live/x")  # reads from here on
        key, _ = stream.video(True, 7200)
        after, _ = stream.video(False, 10800)
        view.pump()
        stream.video(False, 14400)  # written, not yet read by the view
        assert [e.seq for e in view.gop()] == [key, after]
        views.config = dataclasses.replace(Config(), cache_gop=False)
        assert view.gop() == []
        views.close()
        assert view.gop() == []

    run(main())


def test_a_lapped_reader_is_counted_when_its_view_closes(stream: Stream) -> None:
    async def main() -> None:
        views = StreamViews(OneShard(stream), Config())
        view = await views.open("/live/x")
        for i in range(300):  # more than the ring's 256 slots, never read
            stream.video(i % 50 == 0, 3600 * i)
        view.pump()
        laps = view.reader.lapped
        assert laps >= 1
        views.close()
        assert views.laps == laps and view.reader.closed

    run(main())


def test_players_leaving_schedule_a_heap_trim_and_the_last_view_a_prompt_one(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        views = StreamViews(shard, Config())
        trims: list[int] = []
        views.heap._trim = lambda: trims.append(1)
        views.heap.every, views.heap.quiet_delay = 0.5, 0.05
        view = await views.open("/live/x")
        a, _ = flv_player(views, view)
        b, _ = flv_player(views, view)
        a.close()
        await asyncio.sleep(0.15)
        assert trims == [], "a player leaving asks for a trim later, not now"
        b.close()  # the last player: the view closes, the front is quiet
        assert view.closed and views.by_id == {}
        await asyncio.sleep(0.15)
        assert trims == [1]
        await asyncio.sleep(0.6)
        assert trims == [1], "one trim for the whole burst"
        views.close()

    run(main())
