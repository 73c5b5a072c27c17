"""Faults: a node killed with SIGKILL, Redis stopped and started again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.cluster.conftest import RedisServer, api, kill_tree, login, wait_for
from tests.conftest import HubServer
from tests.e2e.tools import Pusher, make_media, play
from tests.hostile.harness import FlvWatcher

pytestmark = pytest.mark.e2e


@pytest.fixture
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "cluster-media"
    folder.mkdir(exist_ok=True)
    return make_media(folder, "h264")


@pytest.fixture
def pushers() -> Iterator[Callable[[str, Path], Pusher]]:
    started: list[Pusher] = []

    def start(url: str, media: Path) -> Pusher:
        p = Pusher(url, media).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def _listed(node: HubServer, token: str) -> list[tuple[str, str]]:
    status, body = api(node, "GET", "/api/v1/streams", token=token)
    return [(s["path"], s["node"]) for s in body["streams"]] if status == 200 else []


def test_kill_9_of_the_owner(three: tuple[HubServer, HubServer, HubServer], redis_server: RedisServer,
                             h264: Path, pushers: Callable[[str, Path], Pusher]) -> None:
    a, b, c = three
    token = b.token()
    pushers(a.rtsp_url("/live/k"), h264)
    wait_for(lambda: _listed(b, token) == [("/live/k", "a")], 15, message="never live on a")
    watchers = [FlvWatcher(n.port, "/live/k").start(frames=10, timeout=20) for n in (b, c)]
    try:
        killed = time.monotonic()
        kill_tree(a)
        # b's and c's players end (the relay's connection is gone), cleanly: closed, not hung.
        for w in watchers:
            wait_for(lambda w=w: w.error is not None, 10, message="a player on b or c kept waiting")
            assert w.error == "connection closed by the server"
        # The directory forgets a within its TTL.
        wait_for(lambda: redis_server.command("EXISTS", "hub:stream:/live/k") == 0, 10,
                 message="the directory still lists a's stream")
        wait_for(lambda: redis_server.command("EXISTS", "hub:node:a") == 0, 10, message="a is still a node")
        forgotten = time.monotonic() - killed
        assert forgotten <= 10.0, f"a forgotten only after {forgotten:.1f} s"
        nodes = [n["name"] for n in api(c, "GET", "/api/v1/cluster", token=token)[1]["nodes"]]
        assert nodes == ["b", "c"]
        assert _listed(c, token) == []
    finally:
        for w in watchers:
            w.stop()
    # The same path pushed to b now plays on c.
    pushers(b.rtsp_url("/live/k"), h264)
    wait_for(lambda: _listed(c, token) == [("/live/k", "b")], 15, message="b's new stream is not listed")
    r = play(f"{c.base}/streams/live/k.flv", frames=30, timeout=20)
    assert (r.video_codec, r.width, r.height) == ("h264", 640, 360) and r.advancing() and r.decode_errors == 0
    assert json.loads(redis_server.command("GET", "hub:stream:/live/k"))["node"] == "b"


def test_redis_restart(three: tuple[HubServer, HubServer, HubServer], redis_server: RedisServer,
                       h264: Path, pushers: Callable[[str, Path], Pusher]) -> None:
    a, b, c = three
    token = a.token()
    assert api(a, "POST", "/api/v1/users", {"name": "keep", "password": "kp"}, token=token)[0] == 200
    assert api(b, "POST", "/api/v1/routes", {"pattern": "/keep", "url": "rtsp://10.0.0.9/k"},
               token=token)[0] == 200
    pushers(a.rtsp_url("/live/r"), h264)
    wait_for(lambda: _listed(b, token) == [("/live/r", "a")], 15, message="never live on a")
    watchers = [FlvWatcher(n.port, "/live/r").start(frames=10, timeout=20) for n in (a, b)]
    try:
        since = time.monotonic()
        redis_server.stop()
        # While Redis is away: writes are refused with a JSON 503, reads and tokens go on.
        status, body = wait_for(lambda: (r := api(b, "POST", "/api/v1/users", {"name": "late", "password": "x"},
                                                  token=token))[0] == 503 and r, 10,
                                message="a write was not refused while Redis was away")
        assert isinstance(body, dict) and "Redis" in body["error"]
        assert api(c, "DELETE", "/api/v1/routes/keep", token=token)[0] == 503
        assert api(c, "GET", "/api/v1/users/keep", token=token)[0] == 200
        assert api(b, "GET", "/api/v1/streams/live/r", token=token)[0] == 200
        time.sleep(7)  # longer than the directory's TTL: entries expire while away
        redis_server.start()
        # The nodes come back: a write goes through again, and reaches every node.
        wait_for(lambda: api(c, "POST", "/api/v1/users", {"name": "after", "password": "ap"},
                             token=token)[0] == 200, 15, step=0.2, message="writes did not come back")
        back = time.monotonic()
        wait_for(lambda: login(a, "after", "ap")[0] == 200, 5, message="a did not hear of c's change")
        assert time.monotonic() - back < 1.5
        # Nothing written before is lost.
        for node in (a, b, c):
            assert login(node, "keep", "kp")[0] == 200
            assert api(node, "GET", "/api/v1/routes/keep", token=token)[0] == 200
        assert api(b, "GET", "/api/v1/users/late", token=token)[0] == 404  # the refused write did nothing
        # a's stream is in the directory again.
        wait_for(lambda: redis_server.command("EXISTS", "hub:stream:/live/r") == 1, 10,
                 message="a did not register its stream again")
        assert json.loads(redis_server.command("GET", "hub:stream:/live/r"))["node"] == "a"
        # The players never noticed.
        for w in watchers:
            w.assert_flowing(since, bound=1.0)
    finally:
        for w in watchers:
            w.stop()
