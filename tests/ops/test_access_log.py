"""The access log: one line per player and publisher session at its end,
with path, protocol, remote address, user, duration and bytes; off by
default."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.ops.clients import FlvPlayer, RtspPlayer
from tests.ops.conftest import stream_live, wait_until

pytestmark = pytest.mark.e2e

PATH = "/live/logged"


def access_lines(srv: HubServer) -> list[dict[str, Any]]:
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            if obj["logger"] == "hub.access":
                out.append(obj)
    return out


def test_one_line_per_session_with_its_fields(hub_factory: Callable[..., HubServer],
                                              push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "2", "--log-access", "--log-format", "json", "--auth",
                      "--log-level", "warning",  # the access log does not depend on the level
                      env={"HUB_AUTH_SCHEME": "basic"})
    pusher = push(srv, PATH, port=None, url_user="admin:admin")
    flv = FlvPlayer(srv.port, PATH, query=f"token={srv.token()}")
    assert flv.open() == 200
    rtsp = RtspPlayer(srv.port, PATH, auth="Basic " + base64.b64encode(b"admin:admin").decode())
    assert rtsp.setup_all() == 200 and rtsp.play() == 200
    flv.read_for(1.5)
    rtsp.read_for(0.5)
    flv.close()
    rtsp.close()
    wait_until(lambda: len(access_lines(srv)) >= 2, 5, "two player lines", srv)
    pusher.stop()
    wait_until(lambda: not stream_live(srv, PATH), 10, "stream ended", srv)
    wait_until(lambda: len(access_lines(srv)) >= 3, 5, "the publisher's line", srv)

    lines = {(o["event"], o["protocol"]): o for o in access_lines(srv)}
    assert set(lines) == {("player", "flv"), ("player", "rtsp"), ("publisher", "rtsp")}
    for o in lines.values():
        assert o["path"] == PATH
        assert o["remote"].startswith("127.0.0.1:")
        assert o["process"].startswith(("front-", "shard-"))
        assert o["duration"] > 0
    # What was written: what the player read, and what was on its way when it left.
    assert flv.body <= lines[("player", "flv")]["bytes"] <= flv.body + 64 * 1024
    assert 1.4 < lines[("player", "flv")]["duration"] < 5
    assert lines[("player", "rtsp")]["bytes"] >= rtsp.body > 0
    assert lines[("player", "rtsp")]["user"] == "admin"
    assert lines[("publisher", "rtsp")]["user"] == "admin"
    assert lines[("publisher", "rtsp")]["bytes"] > 50_000
    assert lines[("publisher", "rtsp")]["process"].startswith("shard-")


def test_off_by_default(hub_factory: Callable[..., HubServer], push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--log-format", "json")
    push(srv, PATH)
    flv = FlvPlayer(srv.port, PATH)
    assert flv.open() == 200
    flv.read_for(0.5)
    flv.close()
    time.sleep(0.5)
    assert access_lines(srv) == []
