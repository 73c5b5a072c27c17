"""RTMP under the operator's tools: /metrics counts RTMP players and
publishers as protocol `rtmp`; the limits refuse an RTMP publisher
(NetStream.Publish.BadName) and player (NetStream.Play.Failed) over them;
the access log has a line per RTMP session."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

import pytest

from hub.media.rtmp.handshake import check_server_answer
from tests.conftest import HubServer
from tests.media.rtmp.rtmp_testkit import Client
from tests.ops.clients import metrics
from tests.ops.conftest import wait_until
from tests.rtmp.conftest import RtmpHub
from tests.rtmp.peers import FlvPusher, read_until, recv_exactly
from tests.e2e.conftest import wait_live

pytestmark = pytest.mark.e2e


def rtmp_client(port: int, *, play: str | None = None, publish: str | None = None) -> tuple[socket.socket, bytes]:
    """Handshake, connect, then play or publish; (the socket, what came up to
    the answer, or up to the close)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    client = Client()
    sock.sendall(client.c0c1)
    answer = recv_exactly(sock, 3073)
    check_server_answer(answer, client.c1)
    setup = client.c2(answer) + client.connect("live")
    setup += client.play_setup(play) if play is not None else client.publish_setup(publish or "x")
    sock.sendall(setup)
    return sock, read_until(sock, b".Start")


def gauge(port: int, name: str, protocol: str) -> float:
    return metrics(port).get((name, (("protocol", protocol),)), -1.0)


def test_metrics_limits_and_access_log(rtmp_factory: Callable[..., RtmpHub], media: Callable[[str], Path]) -> None:
    hub = rtmp_factory("--max-publishers", "1", "--max-players-per-stream", "2", "--log-access",
                       "--log-format", "json")
    srv = hub.srv
    assert gauge(srv.port, "ipchub_publishers", "rtmp") == 0 and gauge(srv.port, "ipchub_players", "rtmp") == 0
    pusher = FlvPusher(hub.url("/live/ops"), media("h264")).start()
    socks: list[socket.socket] = []
    try:
        wait_live(srv, "/live/ops")
        for port in (hub.rtmp_port, srv.port):
            sock, got = rtmp_client(port, play="ops")
            socks.append(sock)
            assert b"NetStream.Play.Start" in got
        wait_until(lambda: gauge(srv.port, "ipchub_players", "rtmp") == 2, 10, "two RTMP players", srv)
        assert gauge(srv.port, "ipchub_publishers", "rtmp") == 1

        third, got = rtmp_client(hub.rtmp_port, play="ops")
        assert b"NetStream.Play.Failed" in got and third.recv(65536) == b""
        third.close()
        second, got = rtmp_client(hub.rtmp_port, publish="another")
        assert b"NetStream.Publish.BadName" in got and second.recv(65536) == b""
        second.close()
        samples = metrics(srv.port)
        assert samples[("ipchub_limit_refusals_total", (("limit", "players_per_stream"),))] == 1
        assert samples[("ipchub_limit_refusals_total", (("limit", "publishers"),))] == 1
    finally:
        for s in socks:
            s.close()
        pusher.stop()
    wait_until(lambda: gauge(srv.port, "ipchub_publishers", "rtmp") == 0, 10, "the publisher gone", srv)
    wait_until(lambda: gauge(srv.port, "ipchub_players", "rtmp") == 0, 10, "the players gone", srv)
    wait_until(lambda: len(access_lines(srv)) >= 3, 10, "three RTMP access lines", srv)
    lines = access_lines(srv)
    assert sorted((o["event"], o["protocol"]) for o in lines) == [
        ("player", "rtmp"), ("player", "rtmp"), ("publisher", "rtmp")]
    for o in lines:
        assert o["path"] == "/live/ops" and o["remote"].startswith("127.0.0.1:") and o["duration"] > 0
        assert o["bytes"] > (10_000 if o["event"] == "publisher" else 1_000)  # players joined at a GOP
        assert o["process"].startswith("shard-" if o["event"] == "publisher" else "front-")


def access_lines(srv: HubServer) -> list[dict[str, Any]]:
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            if obj["logger"] == "hub.access" and obj["protocol"] == "rtmp":  # not wait_live's FLV GET
                out.append(obj)
    return out
