"""A stream pushed to one node plays on every node: relays over RTSP on demand."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

import pytest

from tests.cluster.conftest import RedisServer, api, wait_for
from tests.conftest import HubServer
from tests.e2e.tools import Pusher, make_media, play
from tests.hostile.harness import FlvWatcher

pytestmark = pytest.mark.e2e


@pytest.fixture
def media(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    folder = tmp_path_factory.getbasetemp() / "cluster-media"
    folder.mkdir(exist_ok=True)
    return lambda variant: make_media(folder, variant)


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


def _with_idle(tmp_path: Path, name: str, seconds: float) -> None:
    """The node's config.json (read from its data folder): a short pull idle time."""
    data = tmp_path / name / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "config.json").write_text(json.dumps({"route_idle_timeout": seconds}))


def rtsp(node: HubServer, path: str, user: str = "admin", password: str = "admin") -> str:
    return f"rtsp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{node.port}{path}"


def streams(node: HubServer, token: str) -> list[dict[str, Any]]:
    status, body = api(node, "GET", "/api/v1/streams?c=1&page_size=1000", token=token)
    assert status == 200, body
    return list(body["streams"])


def consumers_on(node: HubServer, token: str, path: str, holder: str) -> int:
    for s in streams(node, token):
        if s["path"] == path:
            return sum(1 for c in s.get("cs", []) if c["node"] == holder)
    return -1


def wait_stream(node: HubServer, token: str, path: str, timeout: float = 15.0) -> None:
    wait_for(lambda: any(s["path"] == path for s in streams(node, token)), timeout,
             message=f"{path} never listed on {node.base}\n{node.log()[-2000:]}")


def test_pushed_to_a_plays_on_b_and_c_everywhere_with_one_relay_each(
        tmp_path: Path, node_factory: Callable[..., HubServer], redis_server: RedisServer,
        media: Callable[[str], Path], pushers: Callable[[str, Path], Pusher]) -> None:
    for name in "bc":
        _with_idle(tmp_path, name, 3)
    a = node_factory("a", "--auth")
    b = node_factory("b", "--auth")
    c = node_factory("c", "--auth")
    token = a.token()
    pushers(rtsp(a, "/live/x"), media("h264"))
    wait_stream(a, token, "/live/x")
    entry = json.loads(redis_server.command("GET", "hub:stream:/live/x"))
    assert entry["node"] == "a" and entry["addr"] == f"127.0.0.1:{a.port}" and entry["kind"] == "publish"
    assert entry["codecs"] == ["H264", "MPEG4-GENERIC"]
    ttl = int(redis_server.command("PTTL", "hub:stream:/live/x"))
    assert 0 < ttl <= 6000

    # Several players on b and c at once (watchers keep playing meanwhile).
    watchers = [FlvWatcher(n.port, "/live/x", f"token={token}").start(frames=10, timeout=20)
                for n in (b, b, c)]
    try:
        for node in (b, c):
            r = play(rtsp(node, "/live/x"), frames=40, timeout=20, options={"rtsp_transport": "tcp"})
            assert (r.video_codec, r.width, r.height) == ("h264", 640, 360) and r.advancing(), r.log[:5]
            assert r.audio_codec == "aac" and r.decode_errors == 0
            r = play(f"{node.base}/streams/live/x.flv?token={token}", frames=40, timeout=20)
            assert (r.video_codec, r.width, r.height) == ("h264", 640, 360) and r.advancing()
            assert r.decode_errors == 0
        _ws_flv_decodes(b, "/live/x", token)
        # A browser path too: RTSP tunnelled in HTTP (FFmpeg's own client).
        r = play(rtsp(c, "/live/x"), frames=30, timeout=20, options={"rtsp_transport": "http"})
        assert (r.video_codec, r.width, r.height) == ("h264", 640, 360) and r.advancing()
        # a holds one consumer per relaying node, however many players they have.
        assert consumers_on(a, token, "/live/x", "a") == 2
        listed = streams(c, token)
        assert [(s["path"], s["node"]) for s in listed] == [("/live/x", "a")]
        assert listed[0]["video"]["codec"] == "H264" and listed[0]["cc"] >= 5
        assert {cs["node"] for cs in listed[0]["cs"]} == {"a", "b", "c"}
        nodes = api(b, "GET", "/api/v1/cluster", token=token)[1]
        by_name = {n["name"]: n for n in nodes["nodes"]}
        assert sorted(by_name) == ["a", "b", "c"] and by_name["b"]["self"] and nodes["node"] == "b"
        assert by_name["a"]["address"] == f"127.0.0.1:{a.port}" and by_name["a"]["uptime"] > 0
        wait_for(lambda: {n["name"]: (n["streams"], n["relays"]) for n in
                          api(b, "GET", "/api/v1/cluster", token=token)[1]["nodes"]}
                 == {"a": (1, 0), "b": (0, 1), "c": (0, 1)}, 5, message="node entries")
        for w in watchers:
            w.assert_flowing(time.monotonic() - 3, bound=1.5)
    finally:
        for w in watchers:
            w.stop()
    # The last players left: each relay closes after the pull idle time (3 s).
    wait_for(lambda: consumers_on(a, token, "/live/x", "a") == 0, 15, step=0.5,
             message="the relays to b and c did not close")
    # HLS (its segmenter on b and c reads the relay; it stops 60 s after the last playlist).
    for node in (b, c):
        r = play(f"{node.base}/streams/live/x.m3u8?token={token}", frames=40, timeout=30)
        assert (r.video_codec, r.width, r.height) == ("h264", 640, 360) and r.advancing()
        assert r.decode_errors == 0, r.log[:5]
    assert consumers_on(a, token, "/live/x", "a") == 2


def _ws_flv_decodes(node: HubServer, path: str, token: str) -> None:
    import av
    import websockets.sync.client as wsc

    msgs = []
    with wsc.connect(f"ws://127.0.0.1:{node.port}/streams{path}.flv?token={token}", open_timeout=5,
                     max_size=None) as ws:
        deadline = time.monotonic() + 15
        while len(msgs) < 120 and time.monotonic() < deadline:
            msgs.append(ws.recv(timeout=5))
    with av.open(io.BytesIO(b"".join(msgs)), format="flv") as cont:
        assert cont.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in cont.decode(video=0)) >= 30


def test_relay_user_is_nobody(node_factory: Callable[..., HubServer], redis_server: RedisServer) -> None:
    a = node_factory("a")
    secret = redis_server.command("GET", "hub:relay-secret")
    assert len(secret) >= 32
    from hub.store.users import RELAY_USER

    assert api(a, "POST", "/api/v1/login", {"username": RELAY_USER, "password": secret})[0] == 403
    # Not a user: GET of it is 404 and it is not listed (checked in test_stores too).
    assert api(a, "GET", f"/api/v1/users/{quote(RELAY_USER, safe='')}", token=a.token())[0] == 404


def test_relay_credential_on_an_auth_node(node_factory: Callable[..., HubServer], redis_server: RedisServer,
                                         media: Callable[[str], Path],
                                         pushers: Callable[[str, Path], Pusher]) -> None:
    from hub.store.users import RELAY_USER

    a = node_factory("a", "--auth")
    token = a.token()
    secret = redis_server.command("GET", "hub:relay-secret")
    pushers(rtsp(a, "/live/r"), media("h264"))
    wait_stream(a, token, "/live/r")
    r = play(rtsp(a, "/live/r", RELAY_USER, secret), frames=20, timeout=15, options={"rtsp_transport": "tcp"})
    assert r.video_codec == "h264" and r.video_frames >= 20
    # ...but may not publish, and a wrong secret is refused.
    bad = Pusher(rtsp(a, "/live/r2", RELAY_USER, secret), media("h264")).start()
    try:
        deadline = time.monotonic() + 15
        while bad.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not bad.alive(), "a publisher with the relay credential was accepted"
    finally:
        bad.stop()
    assert not any(s["path"] == "/live/r2" for s in streams(a, token))
    import av

    with pytest.raises(av.error.FFmpegError) as refused:
        play(rtsp(a, "/live/r", RELAY_USER, "wrong" + secret), frames=5, timeout=5,
             options={"rtsp_transport": "tcp"})
    assert "401" in str(refused.value) or "Unauthorized" in str(refused.value)


def test_second_publisher_on_b_takes_the_path_from_a(
        three: tuple[HubServer, HubServer, HubServer], redis_server: RedisServer,
        media: Callable[[str], Path], pushers: Callable[[str, Path], Pusher]) -> None:
    a, b, c = three
    token = a.token()
    first = pushers(a.rtsp_url("/live/t"), media("h264"))
    wait_stream(a, token, "/live/t")
    watcher = FlvWatcher(c.port, "/live/t").start(frames=5, timeout=20)  # c relays a's stream
    try:
        pushers(b.rtsp_url("/live/t"), media("h265"))
        # As on one node: the newer publisher wins, the older one is disconnected.
        wait_for(lambda: not first.alive(), 15, message="a's publisher was not closed")
        wait_for(lambda: watcher.error is not None, 15, message="c's player of a's stream did not end")
    finally:
        watcher.stop()
    entry = json.loads(redis_server.command("GET", "hub:stream:/live/t"))
    assert entry["node"] == "b" and entry["codecs"][0] == "H265"
    listed = [(s["path"], s["node"]) for s in streams(a, token)]
    assert listed == [("/live/t", "b")]
    r = play(f"{c.base}/streams/live/t.flv", frames=30, timeout=20)
    assert r.video_codec == "hevc" and r.decode_errors == 0 and r.advancing()


def test_delete_is_forwarded_to_the_owner(three: tuple[HubServer, HubServer, HubServer],
                                          media: Callable[[str], Path],
                                          pushers: Callable[[str, Path], Pusher]) -> None:
    a, b, c = three
    token = a.token()
    pushers(a.rtsp_url("/live/d"), media("h264"))
    pushers(a.rtsp_url("/live/k"), media("h264"))
    wait_stream(a, token, "/live/d")
    wait_stream(a, token, "/live/k")
    # A player held by b, kicked through c.
    watcher = FlvWatcher(b.port, "/live/k").start(frames=5, timeout=20)
    try:
        cs = next(s["cs"] for s in streams(c, token) if s["path"] == "/live/k")
        mine = [x for x in cs if x["node"] == "b" and x["packet_type"] == "FLV"]
        assert len(mine) == 1
        status, _ = api(c, "DELETE", f"/api/v1/streams/live/k:consumer?cid={mine[0]['id']}&node=b", token=token)
        assert status == 200
        wait_for(lambda: watcher.error is not None, 5, message="b's player was not kicked")
    finally:
        watcher.stop()
    # A stream owned by a, deleted through c.
    status, _ = api(c, "DELETE", "/api/v1/streams/live/d", token=token)
    assert status == 200
    wait_for(lambda: not any(s["path"] == "/live/d" for s in streams(a, token)), 5,
             message="a's stream was not deleted")
    assert api(b, "GET", "/api/v1/streams/live/k", token=token)[1]["node"] == "a"
    assert api(b, "GET", "/api/v1/streams/live/d", token=token)[0] == 404


def test_a_route_is_pulled_once_in_the_cluster(
        three: tuple[HubServer, HubServer, HubServer], redis_server: RedisServer,
        hub_factory: Callable[..., HubServer], media: Callable[[str], Path],
        pushers: Callable[[str, Path], Pusher]) -> None:
    a, b, c = three
    token = a.token()
    camera = hub_factory("--shards", "1", "--fronts", "1")  # a standalone server plays the camera
    pushers(camera.rtsp_url("/live/cam"), media("h264"))
    wait_stream(camera, camera.token(), "/live/cam")
    assert api(a, "POST", "/api/v1/routes", {"pattern": "/cam/", "url": f"rtsp://127.0.0.1:{camera.port}/live/"},
               token=token)[0] == 200
    # The route reaches b through Redis (within 1 s, tests/cluster/test_stores.py);
    # under load the player could otherwise ask before it arrived.
    wait_for(lambda: any(r.get("pattern") == "/cam/" for r in api(b, "GET", "/api/v1/routes", token=token)[1]["routes"]),
             5, message="the route did not reach b")
    first = FlvWatcher(b.port, "/cam/cam").start(frames=10, timeout=25)  # b's player starts the pull
    try:
        entry = json.loads(redis_server.command("GET", "hub:stream:/cam/cam"))
        assert (entry["node"], entry["kind"]) == ("b", "pull")
        second = FlvWatcher(c.port, "/cam/cam").start(frames=10, timeout=25)  # c relays from b
        try:
            r = play(a.rtsp_url("/cam/cam"), frames=30, timeout=20, options={"rtsp_transport": "tcp"})
            assert r.video_codec == "h264" and r.advancing() and r.decode_errors == 0
            # The camera has one consumer: b's pull; a and c relay from b.
            upstream = streams(camera, camera.token())
            assert [(s["path"], s["cc"]) for s in upstream] == [("/live/cam", 1)]
            assert [(s["path"], s["node"]) for s in streams(c, token)] == [("/cam/cam", "b")]
            first.assert_flowing(time.monotonic() - 2, bound=1.5)
        finally:
            second.stop()
    finally:
        first.stop()
