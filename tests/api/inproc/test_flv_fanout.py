"""The FLV fan-out and its consumers with fake transports: the bytes each
player gets (file header, metadata, sequence headers, the cached GOP, live
tags, as FLV or one WebSocket message per tag), and the back-pressure rules:
a player behind skips to the next keyframe, one stuck is aborted, a fast
player never waits for a slow one."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from hub.api.play import consumer as consumer_mod
from hub.api.play.consumer import CONTROL_LIMIT, HIGH_WATER, ClientFlow, Consumer
from hub.api.play.flv import FlvFanout
from hub.api.play.views import StreamView, StreamViews
from hub.config import Config
from hub.media.codec_config import avc_decoder_config
from hub.media.flv import (CODEC_AVC, SOUND_AAC, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, FlvHeader, FlvTag, parse_audio,
                           parse_script, parse_video)

from .fakes import ASC, FakeTransport, OneShard, Stream, flv_events, flv_tags, media, run, ws_messages
from tests.shard.ingest_helpers import PPS, SPS


async def open_view(stream: Stream, config: Config | None = None) -> tuple[StreamViews, StreamView]:
    views = StreamViews(OneShard(stream), config or Config())
    return views, await views.open(stream.path)


def join(view: StreamView, ws: bool = False) -> tuple[Consumer, FakeTransport]:
    t = FakeTransport()
    c = Consumer(t, "FLV", f"net={'ws' if ws else 'http'}-flv", on_close=view.drop_consumer)
    view.fanout(f"flv-{ws}", lambda v: FlvFanout(v, ws=ws)).join(c)
    return c, t


def test_a_joining_player_gets_the_head_the_gop_then_live_frames(stream: Stream) -> None:
    async def main() -> None:
        views, view = await open_view(stream)
        _, k0 = stream.video(True, 0)
        _, a0 = stream.sound(0)
        _, p1 = stream.video(False, 3600)
        _, a1 = stream.sound(1024)
        views.on_wake({stream.stream_id: 4})  # no player yet: read, nothing written
        c, t = join(view)
        _, p2 = stream.video(False, 7200)
        _, a2 = stream.sound(2048)
        views.on_wake({stream.stream_id: 6})

        events = flv_events(bytes(t.out))
        assert events[0] == FlvHeader(1, has_audio=True, has_video=True)
        tags: list[FlvTag] = events[1:]
        assert tags[0].tag_type == TAG_SCRIPT
        name, (meta,) = parse_script(tags[0].data)
        assert name == "onMetaData"
        assert isinstance(meta, dict)
        assert (meta["width"], meta["height"], meta["framerate"]) == (640, 360, 25.0)
        assert (meta["videocodecid"], meta["audiocodecid"], meta["audiosamplerate"]) == (CODEC_AVC, SOUND_AAC, 44100)
        vseq, aseq = parse_video(tags[1].data), parse_audio(tags[2].data)
        assert (vseq.packet_type, vseq.keyframe, vseq.payload) == (0, True, avc_decoder_config([SPS], [PPS]))
        assert (aseq.sound_format, aseq.packet_type, aseq.payload) == (SOUND_AAC, 0, ASC)
        # The cached GOP, then the live frames: ms timestamps from the tracks' clocks.
        assert media(tags[3:]) == [
            ("video", 0, True, k0), ("audio", 0, False, a0), ("video", 40, False, p1), ("audio", 23, False, a1),
            ("video", 80, False, p2), ("audio", 46, False, a2)]
        assert c.outbytes == len(t.out) and t.writes == 2, "the head and GOP in one write, each batch in one"
        views.close()

    run(main())


def test_players_of_a_format_get_the_same_bytes(stream: Stream) -> None:
    async def main() -> None:
        views, view = await open_view(stream)
        _, ta = join(view)
        _, tb = join(view)
        assert len(view.fanouts) == 1
        ta.take(), tb.take()
        stream.video(True, 0)
        stream.sound(0)
        views.on_wake({stream.stream_id: 2})
        live = ta.take()
        assert live and live == tb.take()
        assert [m[0] for m in media(flv_tags(live))] == ["video", "audio"]
        views.close()

    run(main())


def test_websocket_flv_is_one_binary_message_per_tag(stream: Stream) -> None:
    async def main() -> None:
        views, view = await open_view(stream)
        stream.video(True, 0)
        stream.sound(0)
        views.on_wake({stream.stream_id: 2})
        _, t = join(view, ws=True)
        _, p1 = stream.video(False, 3600, size=70000)  # a 64-bit-length frame
        views.on_wake({stream.stream_id: 3})
        messages = ws_messages(bytes(t.out))
        assert messages[0] == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
        tags = []
        for m in messages[1:]:
            (tag,) = flv_tags(m)  # exactly one whole tag with its PreviousTagSize
            tags.append(tag)
        assert [x.tag_type for x in tags] == [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO, TAG_VIDEO, TAG_AUDIO, TAG_VIDEO]
        assert media(tags)[-1] == ("video", 40, False, p1)
        views.close()

    run(main())


def test_without_a_gop_cache_a_player_starts_at_the_next_keyframe(stream: Stream) -> None:
    async def main() -> None:
        views, view = await open_view(stream, dataclasses.replace(Config(), cache_gop=False))
        stream.video(True, 0)
        views.on_wake({stream.stream_id: 1})
        c, t = join(view)
        head = t.take()
        assert [x.tag_type for x in flv_tags(head[13:])] == [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO], "no frames"
        stream.video(False, 3600)
        stream.sound(1024)
        views.on_wake({stream.stream_id: 3})
        assert t.take() == b"" and c.dropped_batches == 1 and c.skips == 0, "mid-GOP frames are not sent"
        _, a2 = stream.sound(2048)
        _, k = stream.video(True, 7200)
        _, a3 = stream.sound(3072)
        views.on_wake({stream.stream_id: 6})
        # From the keyframe on: the audio before it in the same batch is cut.
        assert media(flv_tags(t.take())) == [("video", 80, True, k), ("audio", 69, False, a3)]
        views.close()

    run(main())


def test_a_player_behind_skips_to_a_keyframe_and_never_slows_the_others(stream: Stream) -> None:
    async def main() -> None:
        views, view = await open_view(stream)
        fast, tf = join(view)
        slow, ts = join(view)
        stream.video(True, 0)
        views.on_wake({stream.stream_id: 1})
        tf.take(), ts.take()
        ts.fill(HIGH_WATER + 1)  # the slow client stopped reading
        stream.video(False, 3600)
        views.on_wake({stream.stream_id: 2})
        assert ts.take() == b"" and slow.skipping and slow.skips == 1
        assert len(media(flv_tags(tf.take()))) == 1, "the fast player got the frame"
        ts.drain()
        _, a2 = stream.sound(2048)
        views.on_wake({stream.stream_id: 3})
        assert ts.take() == b"", "drained, but still waiting for a keyframe"
        stream.sound(3072)
        _, k = stream.video(True, 7200)
        _, p = stream.video(False, 10800)
        views.on_wake({stream.stream_id: 6})
        fast_bytes, slow_bytes = tf.take(), ts.take()
        assert media(flv_tags(slow_bytes)) == [("video", 80, True, k), ("video", 120, False, p)]
        assert fast_bytes.endswith(slow_bytes) and len(fast_bytes) > len(slow_bytes)
        assert (slow.skips, slow.skipping, slow.closed) == (1, False, False)
        assert slow.dropped_batches == 2 and fast.dropped_batches == 0
        views.close()
        assert views.skips == 1 and views.aborts == 0

    run(main())


def test_a_player_not_draining_for_long_is_aborted(stream: Stream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_mod, "BEHIND_SECONDS", 0.03)
    monkeypatch.setattr(consumer_mod, "STUCK_SECONDS", 0.08)

    async def main() -> None:
        views, view = await open_view(stream)
        stream.video(True, 0)
        views.on_wake({stream.stream_id: 1})
        other, _to = join(view)
        c, t = join(view)  # with the GOP: not waiting for a keyframe
        t.take()
        t.fill(1000)  # a little queued: under the byte bound, but it does not move
        _, p1 = stream.video(False, 3600)
        views.on_wake({stream.stream_id: 2})
        assert media(flv_tags(t.take())) == [("video", 40, False, p1)] and not c.skipping, "not behind yet"
        await asyncio.sleep(0.04)
        stream.video(False, 7200)
        views.on_wake({stream.stream_id: 3})
        assert t.take() == b"" and c.skipping and c.skips == 1, "behind in time: skipping"
        await asyncio.sleep(0.06)
        stream.video(True, 10800)
        views.on_wake({stream.stream_id: 4})
        assert c.closed and c.aborted and t.aborted and t.out == b""
        assert view.consumers() == [other] and not view.closed
        await asyncio.sleep(0)
        assert views.aborts == 1 and views.ended["flv"] == 1
        views.close()

    run(main())


def test_a_client_that_does_not_read_its_replies_is_dropped(stream: Stream) -> None:
    async def main() -> None:
        views, view = await open_view(stream)
        c, t = join(view, ws=True)
        t.take()
        c.write_direct(b"pong")
        assert t.take() == b"pong"
        t.fill(CONTROL_LIMIT + 1)
        c.write_direct(b"pong")
        assert t.out == b"" and t.aborted and c.aborted and c.closed
        assert view.closed, "its last player gone, the view closes"

    run(main())


def test_websocket_reading_follows_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_mod, "STUCK_SECONDS", 0.05)

    async def main() -> None:
        t = FakeTransport()
        flow = ClientFlow(t)
        assert t.limits == (consumer_mod.FLOW_HIGH, consumer_mod.FLOW_LOW)
        flow.pause_writing()
        assert not t.reading
        flow.resume_writing()
        assert t.reading and not t.aborted
        await asyncio.sleep(0.08)
        assert not t.aborted, "the drop timer went with the resume"
        flow.pause_writing()
        await asyncio.sleep(0.08)
        assert t.aborted, "not drained in time: dropped"
        flow.close()

    run(main())
