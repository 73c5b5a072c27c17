"""Routes added through the API reach the shards; HLS of a pulled stream
(the reference's HLS fails on pulled streams); RTSP Basic auth."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e


def test_routes_from_the_api_pull_and_play_over_hls_and_rtsp(
        hub_factory: Callable[..., HubServer], media: Callable[[str], Path]) -> None:
    up = hub_factory("--shards", "1", "--fronts", "1")
    down = hub_factory("--shards", "2", "--fronts", "2")
    with Pusher(up.rtsp_url("/live/door"), media("h264")) as _pusher:
        wait_live(up, "/live/door")
        assert down.post_json("/api/v1/routes", {"pattern": "/hr/", "url": up.rtsp_url("/live/")}) == 200
        assert down.post_json("/api/v1/routes", {"pattern": "/gate", "url": up.rtsp_url("/live/door")}) == 200
        r = play(f"{down.base}/streams/hr/door.m3u8", frames=40, timeout=25)
        assert r.video_codec == "h264" and (r.width, r.height) == (640, 360)
        assert r.video_frames >= 40 and r.decode_errors == 0, r.log[:10]
        r = play(down.rtsp_url("/gate"), frames=25, timeout=15)
        assert r.video_frames >= 25 and r.audio_codec == "aac"
        addr = down.get_json("/api/v1/streams/gate")["addr"]
        assert addr == up.rtsp_url("/live/door")


def test_rtsp_basic_auth(hub_factory: Callable[..., HubServer], media: Callable[[str], Path]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--auth", env={"HUB_AUTH_SCHEME": "basic"})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(f"ANNOUNCE {srv.rtsp_url('/live/b')} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
        resp = s.recv(4096)
    assert resp.startswith(b"RTSP/1.0 401") and b'WWW-Authenticate: Basic realm="ipchub"' in resp
    url = srv.rtsp_url("/live/b").replace("rtsp://", "rtsp://admin:admin@")
    with Pusher(url, media("h264")) as _pusher:
        token = srv.token()
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"{srv.base}/streams/live/b.flv?token={token}", timeout=2) as r:
                    assert r.read(3) == b"FLV"
                    break
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline, srv.log()[-2000:]
                time.sleep(0.2)
        r = play(url, frames=20, timeout=15)
        assert r.video_frames >= 20
        bad = srv.rtsp_url("/live/b").replace("rtsp://", "rtsp://admin:wrong@")
        import av

        with pytest.raises(av.error.HTTPUnauthorizedError):
            play(bad, frames=5, timeout=5)
