"""Players are counted by protocol: HTTP-FLV, WS-FLV, RTSP over the HTTP
tunnel (FFmpeg's client) and HLS, while they play and after."""

from __future__ import annotations

import threading
import urllib.request
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import PlayResult, Pusher, play
from tests.ops.clients import FlvPlayer, metrics
from tests.ops.conftest import wait_until

pytestmark = pytest.mark.e2e

PATH = "/live/protocols"


def players(port: int) -> dict[str, float]:
    return {dict(labels)["protocol"]: v for (name, labels), v in metrics(port).items() if name == "ipchub_players"}


def test_players_by_protocol(hub_factory: Callable[..., HubServer], push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "2")
    push(srv, PATH)
    flv, wsflv = FlvPlayer(srv.port, PATH), FlvPlayer(srv.port, PATH, ws=True)
    assert flv.open() == 200 and wsflv.open() == 101
    with urllib.request.urlopen(f"{srv.base}/streams{PATH}.m3u8", timeout=20) as r:
        assert r.status == 200
    result: list[PlayResult] = []
    tunnel = threading.Thread(target=lambda: result.append(
        play(srv.rtsp_url(PATH), frames=100, timeout=15, options={"rtsp_transport": "http"})))
    tunnel.start()
    try:
        wait_until(lambda: players(srv.port) == {"flv": 1, "wsflv": 1, "hls": 1, "tunnel": 1, "rtsp": 0,
                                                 "wsp": 0, "rtsp-ws": 0, "rtmp": 0, "whep": 0}, 10, "one player of each", srv)
    finally:
        tunnel.join(20)
        flv.close()
        wsflv.close()
    assert result and result[0].video_frames > 0
    wait_until(lambda: players(srv.port)["tunnel"] == 0 and players(srv.port)["flv"] == 0, 5, "players gone", srv)
    sessions = {dict(labels)["protocol"]: v for (name, labels), v in metrics(srv.port).items()
                if name == "ipchub_player_sessions_total"}
    assert sessions == {"flv": 1, "wsflv": 1, "hls": 1, "tunnel": 1, "rtsp": 0, "wsp": 0, "rtsp-ws": 0, "rtmp": 0,
                        "whep": 0}
