"""Operator limits hold across fronts: over a limit a player gets HTTP 503
or RTSP 453, a publisher RTSP 453, and `ipchub_limit_refusals_total`
counts each refusal."""

from __future__ import annotations

from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.ops.clients import FlvPlayer, RtspPlayer, metrics
from tests.ops.conftest import wait_until

pytestmark = pytest.mark.e2e

PATH = "/live/limited"


def refusals(port: int, limit: str) -> float:
    return metrics(port)[("ipchub_limit_refusals_total", (("limit", limit),))]


def test_the_eleventh_player_of_a_stream_is_refused(hub_factory: Callable[..., HubServer],
                                                    push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "2", "--fronts", "2", "--max-players-per-stream", "10")
    push(srv, PATH)
    push(srv, "/live/other")
    flv = [FlvPlayer(srv.port, PATH) for _ in range(6)]
    rtsp = [RtspPlayer(srv.port, PATH) for _ in range(4)]
    try:
        assert [p.open() for p in flv] == [200] * 6
        assert [p.setup_all() for p in rtsp] == [200] * 4  # a player counts from its SETUP
        assert [p.play() for p in rtsp] == [200] * 4
        # Both fronts serve some of them (the kernel spreads connections), yet:
        eleventh = FlvPlayer(srv.port, PATH)
        assert eleventh.open() == 503
        eleventh.close()
        late_rtsp = RtspPlayer(srv.port, PATH)
        assert late_rtsp.setup_all() == 453
        late_rtsp.close()
        assert refusals(srv.port, "players_per_stream") == 2
        other = FlvPlayer(srv.port, "/live/other")  # another stream has its own count
        assert other.open() == 200
        other.close()
        # One leaves (once its front has seen it go): the next one is admitted.
        flv.pop().close()
        wait_until(lambda: metrics(srv.port)[("ipchub_players", (("protocol", "flv"),))] == 5, 5, "a player gone")
        replacement = FlvPlayer(srv.port, PATH)
        assert replacement.open() == 200
        flv.append(replacement)
        assert refusals(srv.port, "players_per_stream") == 2
        samples = metrics(srv.port)
        assert samples[("ipchub_players", (("protocol", "flv"),))] == 6
        assert samples[("ipchub_players", (("protocol", "rtsp"),))] == 4
    finally:
        for f in flv:
            f.close()
        for r in rtsp:
            r.close()


SDP = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n")


def test_total_players_publishers_and_sessions_per_address(hub_factory: Callable[..., HubServer],
                                                           push: Callable[..., Pusher]) -> None:
    """Players come from several loopback addresses (127.0.0.N) to tell the
    per-address limit from the others."""
    srv = hub_factory("--shards", "2", "--fronts", "2", "--max-players", "3", "--max-publishers", "2",
                      "--max-connections-per-ip", "2")
    push(srv, "/live/a")  # two publishers from 127.0.0.1
    push(srv, "/live/b")
    publisher = RtspPlayer(srv.port, "/live/c", source="127.0.0.3")
    status, _, _ = publisher.request("ANNOUNCE", publisher.url, "Content-Type: application/sdp\r\n", body=SDP)
    publisher.close()
    assert status == 453
    players = [FlvPlayer(srv.port, "/live/a", source="127.0.0.2") for _ in range(2)]
    try:
        assert [p.open() for p in players] == [200, 200]
        third_from_same = FlvPlayer(srv.port, "/live/b", source="127.0.0.2")
        assert third_from_same.open() == 503
        third_from_same.close()
        players.append(FlvPlayer(srv.port, "/live/b", source="127.0.0.4"))
        assert players[-1].open() == 200
        fourth = FlvPlayer(srv.port, "/live/b", source="127.0.0.5")
        assert fourth.open() == 503
        fourth.close()
        assert [refusals(srv.port, n) for n in ("publishers", "connections_per_ip", "players")] == [1, 1, 1]
    finally:
        for p in players:
            p.close()


def _hls_status(port: int, path: str, source: str, token: str = "") -> int:
    """One playlist request from `source` (a viewer is its address and token)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
    try:
        conn.request("GET", f"/streams{path}.m3u8" + (f"?token={token}" if token else ""))
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_hls_viewers_are_players_under_the_limits(hub_factory: Callable[..., HubServer],
                                                  push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "2", "--max-players-per-stream", "2")
    push(srv, PATH)
    flv = FlvPlayer(srv.port, PATH)
    try:
        assert flv.open() == 200
        assert _hls_status(srv.port, PATH, "127.0.0.2") == 200  # the second player of the stream
        # The same viewer again (another connection, maybe another front): not a new player.
        assert [_hls_status(srv.port, PATH, "127.0.0.2") for _ in range(4)] == [200] * 4
        # A third player, over HLS or FLV: refused, and counted.
        assert _hls_status(srv.port, PATH, "127.0.0.3") == 503
        late = FlvPlayer(srv.port, PATH)
        assert late.open() == 503
        late.close()
        assert refusals(srv.port, "players_per_stream") == 2
    finally:
        flv.close()
