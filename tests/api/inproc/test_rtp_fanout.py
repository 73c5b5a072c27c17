"""The RTP fan-out across several RTSP players of one stream on fake
transports: packetised once (players with the same channels get the same
bytes), each player only the tracks and channels it set up, PAUSE stops
its frames, and a player leaving leaves the others playing."""

from __future__ import annotations

from hub.api.play.rtp import RtpFanout

from .fakes import OneShard, Stream, make_front, run
from .test_rtsp_connection import URL, Client, connect, h264_units, play, rtp_of


async def setup_play(c: Client, channels: dict[int, int]) -> None:
    for track, ch in channels.items():
        answer = await c.ask("SETUP", f"{URL}/trackID={track}", f"Transport: RTP/AVP/TCP;unicast;interleaved={ch}-{ch + 1}")
        assert answer.status == 200
    assert (await c.ask("PLAY", f"{URL}/")).status == 200


def test_players_with_the_same_channels_get_the_same_bytes(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        a, b = await connect(front), await connect(front)
        await play(a)
        await play(b)
        assert front.views.by_path["/live/x"].fanouts.keys() == {"rtp"}, "one fan-out for both"
        a.t.take(), b.t.take()
        stream.video(True, 0, size=3000)
        stream.sound(0)
        front.views.on_wake({stream.stream_id: 2})
        got = a.t.take()
        assert got and got == b.t.take()
        a.conn.close()
        b.conn.close()

    run(main())


def test_each_player_gets_its_tracks_on_its_channels(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        video_only, both = await connect(front), await connect(front)
        await setup_play(video_only, {0: 6})
        await setup_play(both, {0: 10, 1: 4})
        _, k = stream.video(True, 0)
        _, a = stream.sound(0)
        front.views.on_wake({stream.stream_id: 2})
        v_frames, b_frames = video_only.take_frames(), both.take_frames()
        assert {f.channel for f in v_frames} == {6} and {f.channel for f in b_frames} == {10, 4}
        assert [d for _t, d, _k in h264_units(rtp_of(v_frames, 6))] == [k]
        assert rtp_of(v_frames, 6) == rtp_of(b_frames, 10), "the same packets, on other channels"
        assert len(rtp_of(b_frames, 4)) == 1 and a in rtp_of(b_frames, 4)[0].payload
        video_only.conn.close()
        both.conn.close()

    run(main())


def test_pause_stops_a_players_frames_and_leaving_keeps_the_others(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        front = make_front(shard)
        a, b = await connect(front), await connect(front)
        await play(a)
        await play(b)
        assert (await a.ask("PAUSE", f"{URL}/")).status == 200
        a.t.take(), b.t.take()
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        assert a.t.take() == b"" and b.take_frames()
        assert (await a.ask("PLAY", f"{URL}/")).status == 200
        a.take_frames()
        stream.video(False, 3600)  # a resumes live at the next keyframe (no second GOP burst)
        front.views.on_wake({stream.stream_id: 2})
        assert a.t.take() == b"" and b.take_frames()
        stream.video(True, 7200)
        front.views.on_wake({stream.stream_id: 3})
        assert a.take_frames() and b.take_frames()
        view = front.views.by_path["/live/x"]
        fanout = view.fanouts["rtp"]
        assert isinstance(fanout, RtpFanout)
        b.t.hang_up()
        assert len(fanout.players) == 1 and not view.closed and shard.notices == []
        stream.video(False, 10800)
        front.views.on_wake({stream.stream_id: 4})
        assert a.take_frames()
        a.t.hang_up()
        assert view.closed and shard.notices == [("release_stream", {"stream_id": stream.stream_id})]

    run(main())
