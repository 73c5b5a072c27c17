"""RTMP in and out of a real server tree, with real peers decoding frames.

Pushed with the FFmpeg CLI (`-f flv`, H.264+AAC) to RTMP's own port and to
the shared port, with PyAV's FFmpeg (H.265 as Enhanced RTMP) and with our
own client (H.265 as the legacy codec id 12); played back over RTMP (PyAV,
ffprobe), RTSP, HTTP-FLV and HLS; an RTSP-published stream played over RTMP.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.e2e.conftest import wait_live
from tests.e2e.tools import PlayResult, Pusher, play
from tests.rtmp.conftest import RtmpHub
from tests.rtmp.peers import FlvPusher, LegacyHevcPusher, ffprobe_frames, hevc_pusher, read_until, recv_exactly

pytestmark = pytest.mark.e2e

Push = Callable[..., FlvPusher]


def check(r: PlayResult, codec: str, size: tuple[int, int], frames: int = 50, audio: str | None = "aac") -> None:
    assert r.video_codec == codec and r.audio_codec == audio, (r.video_codec, r.audio_codec, r.log[:5])
    assert (r.width, r.height) == size
    assert r.video_frames >= frames and r.first_video_key, (r.video_frames, r.first_video_key)
    assert r.decode_errors == 0, r.log[:10]
    assert r.advancing() and r.video_pts == sorted(r.video_pts)


def check_probe(frames: list[tuple[float, int, int, str]], codec: str, size: tuple[int, int]) -> None:
    assert len(frames) >= 25, frames[:5]
    assert {(w, h, c) for _, w, h, c in frames} == {(*size, codec)}
    pts = [t for t, _, _, _ in frames]
    assert pts == sorted(pts) and pts[-1] - pts[0] >= 0.9


def test_ffmpeg_pushes_to_the_rtmp_port_and_every_output_plays(rtmp_hub: RtmpHub, rtmp_push: Push) -> None:
    srv = rtmp_hub.srv
    rtmp_push(srv, rtmp_hub.url("/live/cam1"), "/live/cam1")
    check(play(rtmp_hub.url("/live/cam1"), frames=50, timeout=20), "h264", (640, 360))
    check_probe(ffprobe_frames(rtmp_hub.url("/live/cam1")), "h264", (640, 360))
    check(play(srv.rtsp_url("/live/cam1"), frames=50, timeout=20), "h264", (640, 360))
    check(play(f"{srv.base}/streams/live/cam1.flv", frames=50, timeout=20), "h264", (640, 360))
    check(play(f"{srv.base}/streams/live/cam1.m3u8", frames=50, timeout=30), "h264", (640, 360))
    info = srv.get_json("/api/v1/streams/live/cam1")
    assert info["video"]["codec"] == "H264" and (info["video"]["width"], info["video"]["height"]) == (640, 360)
    assert info["audio"]["codec"] == "AAC" and info["audio"]["samplerate"] == 44100
    assert info["addr"].startswith("127.0.0.1:") and info["size"] > 100_000


def test_ffmpeg_pushes_to_the_shared_port(rtmp_hub: RtmpHub, rtmp_push: Push) -> None:
    srv = rtmp_hub.srv
    rtmp_push(srv, rtmp_hub.url("/live/shared", srv.port), "/live/shared")
    check_probe(ffprobe_frames(rtmp_hub.url("/live/shared", srv.port)), "h264", (640, 360))
    check_probe(ffprobe_frames(rtmp_hub.url("/live/shared")), "h264", (640, 360))
    check(play(f"{srv.base}/streams/live/shared.flv", frames=30, timeout=20), "h264", (640, 360), frames=30)


def test_pyav_pushes_h265_as_enhanced_rtmp(rtmp_hub: RtmpHub) -> None:
    srv = rtmp_hub.srv
    pusher = hevc_pusher(rtmp_hub.url("/live/hevc"), seconds=40)
    try:
        wait_live(srv, "/live/hevc", timeout=20)
        check(play(rtmp_hub.url("/live/hevc"), frames=40, timeout=20), "hevc", (320, 240), 40, audio=None)
        check(play(srv.rtsp_url("/live/hevc"), frames=40, timeout=20), "hevc", (320, 240), 40, audio=None)
        check(play(f"{srv.base}/streams/live/hevc.flv", frames=40, timeout=20), "hevc", (320, 240), 40,
              audio=None)
        check(play(f"{srv.base}/streams/live/hevc.m3u8", frames=40, timeout=30), "hevc", (320, 240), 40,
              audio=None)
        assert srv.get_json("/api/v1/streams/live/hevc")["video"]["codec"] == "H265"
    finally:
        pusher.kill()
        pusher.wait(10)


def test_h265_with_the_legacy_codec_id(rtmp_hub: RtmpHub, media: Callable[[str], Path]) -> None:
    srv = rtmp_hub.srv
    pusher = LegacyHevcPusher(rtmp_hub.rtmp_port, "legacy", media("h265")).start()
    try:
        wait_live(srv, "/live/legacy", timeout=20)
        check(play(srv.rtsp_url("/live/legacy"), frames=40, timeout=20), "hevc", (640, 360), 40)
        check(play(rtmp_hub.url("/live/legacy"), frames=40, timeout=20), "hevc", (640, 360), 40)
        check(play(f"{srv.base}/streams/live/legacy.m3u8", frames=40, timeout=30), "hevc", (640, 360), 40)
        assert pusher.error is None, pusher.error
    finally:
        pusher.stop()


def test_an_rtsp_published_stream_plays_over_rtmp(rtmp_hub: RtmpHub, push: Callable[..., Pusher]) -> None:
    srv = rtmp_hub.srv
    push("/live/rtsp", "h264_bframes", srv=srv)
    check(play(rtmp_hub.url("/live/rtsp"), frames=50, timeout=20), "h264", (640, 360))
    check(play(rtmp_hub.url("/live/rtsp", srv.port), frames=30, timeout=20), "h264", (640, 360), 30)
    check_probe(ffprobe_frames(rtmp_hub.url("/live/rtsp")), "h264", (640, 360))


def _raw_player(port: int, name: str) -> socket.socket:
    """An RTMP player on a plain socket, playing when returned."""
    from tests.media.rtmp.rtmp_testkit import Client
    from hub.media.rtmp.handshake import check_server_answer

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    client = Client()
    sock.sendall(client.c0c1)
    answer = recv_exactly(sock, 3073)
    check_server_answer(answer, client.c1)
    sock.sendall(client.c2(answer) + client.connect("live") + client.play_setup(name))
    assert b"NetStream.Play.Start" in read_until(sock, b"NetStream.Play.Start")
    return sock


def test_players_and_publishers_are_counted(rtmp_hub: RtmpHub, rtmp_push: Push) -> None:
    srv = rtmp_hub.srv
    rtmp_push(srv, rtmp_hub.url("/live/count"), "/live/count")
    before = srv.get_json("/api/v1/runtime")["rtmp"]
    players = [_raw_player(rtmp_hub.rtmp_port, "count"), _raw_player(srv.port, "count")]
    try:
        info = srv.get_json("/api/v1/streams/live/count?c=1")
        consumers = info["cs"]
        rtmp = [c for c in consumers if c["extra"].startswith("net=rtmp,")]
        assert info["cc"] == len(consumers) and len(rtmp) == 2 and {c["packet_type"] for c in rtmp} == {"FLV"}
        assert {c["extra"].split(",")[1] for c in rtmp} == {f"127.0.0.1:{p.getsockname()[1]}" for p in players}
        now = srv.get_json("/api/v1/runtime")["rtmp"]
        # The publisher's connection is active in its shard, each player's in its front.
        assert now["active"] == before["active"] + 2 and now["total"] == before["total"] + 2
        assert before["active"] >= 1 and before["total"] >= 1
    finally:
        for p in players:
            p.close()
    deadline = time.monotonic() + 5
    while srv.get_json("/api/v1/runtime")["rtmp"]["active"] != before["active"]:
        assert time.monotonic() < deadline, "closed RTMP players still counted"
        time.sleep(0.1)
