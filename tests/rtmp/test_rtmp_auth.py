"""RTMP with `auth` on: publishing needs the push right, playing the pull
right, with credentials in the app or the stream name (`?user=&pass=` or
`?token=`), as OBS can only put them in the stream key. Refusals are the
RTMP statuses (NetConnection.Connect.Rejected, NetStream.Publish.BadName,
NetStream.Play.Failed), then a close; FFmpeg is refused or accepted, and the
exact answers are read with a raw client."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

import pytest

from hub.media.rtmp.handshake import check_server_answer
from tests.conftest import HubServer
from tests.media.rtmp.rtmp_testkit import Client
from tests.rtmp.conftest import RtmpHub
from tests.rtmp.peers import FlvPusher, ffprobe_frames, recv_exactly

pytestmark = pytest.mark.e2e

USERS = {"pusher": {"push": "/live/*"}, "viewer": {"pull": "/live/*"}}


def _call(srv: HubServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


@pytest.fixture
def auth_hub(rtmp_factory: Callable[..., RtmpHub]) -> Iterator[RtmpHub]:
    hub = rtmp_factory("--auth")
    admin = hub.srv.token()
    for name, rights in USERS.items():
        status, body = _call(hub.srv, "POST", f"/api/v1/users?token={admin}",
                             {"name": name, "password": "pw-" + name, **rights})
        assert status == 200, (status, body)
    yield hub


def _publish_once(url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
                           "-i", "testsrc2=size=320x240:rate=25", "-c:v", "libx264", "-g", "25", "-t", "1",
                           "-f", "flv", url], capture_output=True, timeout=60)


def _raw(port: int, app: str, play: str | None = None, publish: str | None = None) -> bytes:
    """Handshake, connect to `app`, then play or publish; every byte the
    server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        client = Client()
        sock.sendall(client.c0c1)
        answer = recv_exactly(sock, 3073)
        check_server_answer(answer, client.c1)
        setup = client.c2(answer) + client.connect(app)
        if play is not None:
            setup += client.play_setup(play)
        if publish is not None:
            setup += client.publish_setup(publish)
        sock.sendall(setup)
        out = bytearray()
        while part := sock.recv(65536):
            out += part
        return bytes(out)


def test_publish_needs_the_push_right(auth_hub: RtmpHub, media: Callable[[str], Path]) -> None:
    srv, port = auth_hub.srv, auth_hub.rtmp_port
    for name in ("live/a", "live/a?user=pusher&pass=wrong", "live/a?user=nobody&pass=x",
                 "live/a?user=viewer&pass=pw-viewer", "live/a?token=not.a.token",
                 "other/a?user=pusher&pass=pw-pusher"):
        r = _publish_once(f"rtmp://127.0.0.1:{port}/{name}")
        assert r.returncode != 0, name
        assert b"Server error" in r.stderr, (name, r.stderr[-300:])
    r = _publish_once(f"rtmp://127.0.0.1:{port}/live?user=pusher&pass=wrong/a")
    assert r.returncode != 0 and b"Server error" in r.stderr
    assert _call(srv, "GET", f"/api/v1/streams?token={srv.token()}")[1]["total"] == 0

    # The exact answers: a connect with bad credentials is rejected at once,
    # a publish without the right gets BadName; each is then closed.
    out = _raw(port, "live?user=pusher&pass=wrong")
    assert b"_error" in out and b"NetConnection.Connect.Rejected" in out
    out = _raw(port, "live", publish="a?user=viewer&pass=pw-viewer")
    assert b"NetConnection.Connect.Success" in out and b"NetStream.Publish.BadName" in out
    assert b"NetStream.Publish.Start" not in out

    # Right ones, in the stream key or in the app (a token), on either port.
    token = quote(srv.token())
    for url, path in ((f"rtmp://127.0.0.1:{port}/live/a?user=pusher&pass=pw-pusher", "/live/a"),
                      (f"rtmp://127.0.0.1:{srv.port}/live?token={token}/b", "/live/b")):
        p = FlvPusher(url, media("h264")).start()
        try:
            _wait_stream(srv, path)
        finally:
            p.stop()


def _wait_stream(srv: HubServer, path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _call(srv, "GET", f"/api/v1/streams{path}?token={srv.token()}")[0] != 200:
        assert time.monotonic() < deadline, f"{path} not live\n{srv.log()[-3000:]}"
        time.sleep(0.2)


def test_play_needs_the_pull_right(auth_hub: RtmpHub, media: Callable[[str], Path]) -> None:
    srv, port = auth_hub.srv, auth_hub.rtmp_port
    p = FlvPusher(f"rtmp://127.0.0.1:{port}/live/p?user=admin&pass=admin", media("h264")).start()
    try:
        _wait_stream(srv, "/live/p")
        for name in ("p", "p?user=viewer&pass=wrong", "p?user=pusher&pass=pw-pusher", "p?token=bad"):
            r = subprocess.run(["ffprobe", "-hide_banner", "-loglevel", "error", "-rw_timeout", "10000000",
                                f"rtmp://127.0.0.1:{port}/live/{name}"], capture_output=True, timeout=30)
            assert r.returncode != 0 and b"Server error" in r.stderr, (name, r.stderr[-300:])
        out = _raw(port, "live", play="p?user=pusher&pass=pw-pusher")
        assert b"NetStream.Play.Failed" in out and b"NetStream.Play.Start" not in out

        viewer = srv.token("viewer", "pw-viewer")
        for url in (f"rtmp://127.0.0.1:{port}/live/p?user=viewer&pass=pw-viewer",
                    f"rtmp://127.0.0.1:{port}/live?token={quote(viewer)}/p",
                    f"rtmp://127.0.0.1:{srv.port}/live/p?token={quote(viewer)}"):
            frames = ffprobe_frames(url)
            assert len(frames) >= 25 and {(w, h, c) for _, w, h, c in frames} == {(640, 360, "h264")}
    finally:
        p.stop()
