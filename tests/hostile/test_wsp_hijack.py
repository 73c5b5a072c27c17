"""Defect 1: a WSP viewer's session could be hijacked or killed by anyone.

Channel numbers were small and sequential (256, 257, 512...), a data
socket's JOIN of another client's channel was answered 200 and closed the
owner's data socket, and with --auth a token for a different path was
enough. Now: channels are random (at least 64 bits), a JOIN is bound to the
control connection's path and credentials, and a live data socket is never
replaced.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from hub.media.wsp import WspResponse
from tests.conftest import HubServer
from tests.e2e.test_rtsp_ws import header_of, rtsp_request, status_of
from tests.e2e.tools import Pusher
from tests.hostile.harness import FlvWatcher

pytestmark = pytest.mark.e2e


def wsp(verb: str, seq: int, payload: str = "", **headers: str) -> str:
    lines = [f"WSP/1.1 {verb}", *(f"{k}: {v}" for k, v in headers.items()), f"seq: {seq}"]
    return "\r\n".join(lines) + "\r\n\r\n" + payload


def connect(port: int, target: str, proto: str) -> Any:
    from websockets.sync.client import connect as ws_connect

    return ws_connect(f"ws://127.0.0.1:{port}{target}", subprotocols=[proto], open_timeout=5,  # type: ignore[list-item]
                      max_size=None, max_queue=None)


def reply(ws: Any, timeout: float = 5.0) -> WspResponse:
    while True:
        r = ws.recv(timeout=timeout)
        if isinstance(r, str):
            return WspResponse.parse(r.encode())


class WspViewer:
    """A Streamedian-like client playing `path`; its data socket's messages
    are timed by a thread."""

    def __init__(self, port: int, path: str, query: str = "") -> None:
        self.port = port
        self.path = path
        target = f"/streams{path}" + (f"?{query}" if query else "")
        self._sockets = contextlib.ExitStack()
        self.ctl = self._sockets.enter_context(connect(port, target, "control"))
        self.ctl.send(wsp("INIT", 1, proto="rtsp", host="127.0.0.1", port=str(port)))
        r = reply(self.ctl)
        assert r.status == 200, bytes(r)
        self.channel = r.header("channel") or ""
        self.data = self._sockets.enter_context(connect(port, target, "data"))
        self.data.send(wsp("JOIN", 1, channel=self.channel))
        r = reply(self.data)
        assert r.status == 200, bytes(r)
        self.seq = 2
        url = f"rtsp://127.0.0.1:{port}{path}"
        assert status_of(self.wrap(rtsp_request("DESCRIBE", url, 1, "Accept: application/sdp"))) == 200
        rr = self.wrap(rtsp_request("SETUP", url + "/trackID=0", 2, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"))
        assert status_of(rr) == 200, rr
        session = header_of(rr, "Session").split(";")[0]
        assert status_of(self.wrap(rtsp_request("PLAY", url, 3, f"Session: {session}"))) == 200
        self.arrivals: list[float] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def wrap(self, text: str) -> str:
        self.ctl.send(wsp("WRAP", self.seq, text))
        self.seq += 1
        r = reply(self.ctl)
        assert r.status == 200
        return r.payload.decode()

    def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while not self._stop.is_set():
            try:
                msg = self.data.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed as e:
                self.error = f"data socket closed: {e}"
                return
            if isinstance(msg, bytes):
                self.arrivals.append(time.monotonic())

    def assert_flowing(self, since: float, bound: float = 1.0) -> None:
        now = time.monotonic()
        assert self.error is None, self.error
        times = [since, *(t for t in list(self.arrivals) if t > since), now]
        worst = max(b - a for a, b in zip(times, times[1:]))
        assert worst <= bound, f"the WSP viewer's data stopped for {worst:.2f} s"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sockets.close()


def attempt_join(port: int, target: str, channel: str) -> int:
    """A stranger's data socket JOINs `channel`: the status it gets (0 if the
    server closed without a WSP answer)."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    try:
        cm = connect(port, target, "data")
        ws = cm.__enter__()
    except InvalidStatus as e:  # refused at the door (HTTP status)
        return int(e.response.status_code)
    with contextlib.closing(ws):
        ws.send(wsp("JOIN", 1, channel=channel))
        try:
            return reply(ws).status
        except ConnectionClosed:
            return 0


def test_owner_hand_over_round_trip() -> None:
    from hypothesis import given, strategies as st

    from hub.errors import ProtocolError
    from hub.api.rtsp.wsp import WspOwner

    for owner in (WspOwner("/live/x", None), WspOwner("/live/ü", "alice")):
        assert WspOwner.unpack(owner.pack(b"\x81\x85rest")) == (owner, b"\x81\x85rest")

    @given(st.binary(max_size=64))
    def any_bytes(data: bytes) -> None:
        try:
            WspOwner.unpack(data)
        except ProtocolError:
            pass

    any_bytes()


def test_channels_are_unguessable(hub: HubServer) -> None:
    channels = []
    for _ in range(12):
        with connect(hub.port, "/streams/live/any", "control") as ctl:
            ctl.send(wsp("INIT", 1, proto="rtsp"))
            r = reply(ctl)
            assert r.status == 200
            channels.append(r.header("channel") or "")
    assert len(set(channels)) == len(channels)
    for ch in channels:
        # Echoed verbatim by the player (Streamedian splits header lines at ':').
        assert ch.isalnum() and ch.isascii(), ch
        assert len(ch) >= 16, f"channel {ch!r} cannot carry 64 random bits"
    values = sorted(int(ch, 16) for ch in channels)
    assert min(b - a for a, b in zip(values, values[1:])) > 2**20, f"channels are close together: {channels}"


def test_a_stranger_cannot_join_or_kill_a_viewers_session(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    push("/live/wsp")
    watcher = watch(hub, "/live/wsp")
    viewer = WspViewer(hub.port, "/live/wsp")
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        # The very channel (leaked), its neighbours, on the same path and another.
        statuses = {}
        base = viewer.channel
        # The leaked channel several times: with two fronts some of these
        # land on the other front, which hands them over to the owner's.
        guesses = [base] * 3
        if base.isdigit():
            guesses += [str(int(base) + d) for d in (-256, -1, 1, 256)]
        for target in ("/streams/live/wsp", "/streams/live/other"):
            for i, ch in enumerate(guesses):
                statuses[(target, i, ch)] = attempt_join(hub.port, target, ch)
        assert all(s != 200 for s in statuses.values()), f"a stranger's JOIN was accepted: {statuses}"
        assert set(statuses.values()) == {404}, "every refusal looks like an unknown channel"
        time.sleep(3.0)
        viewer.assert_flowing(t0)
        watcher.assert_flowing(t0)
    finally:
        viewer.close()


def test_a_second_init_is_refused_and_changes_nothing(
        hub: HubServer, push: Callable[..., Pusher]) -> None:
    """Session-state abuse: INIT again on a playing control socket used to
    close the session and the control socket with it."""
    push("/live/wsp")
    viewer = WspViewer(hub.port, "/live/wsp")
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        viewer.ctl.send(wsp("INIT", 99, proto="rtsp"))
        r = reply(viewer.ctl)
        assert (r.status, r.header("seq"), r.header("channel")) == (400, "99", None), bytes(r)
        url = f"rtsp://127.0.0.1:{hub.port}/live/wsp"
        assert status_of(viewer.wrap(rtsp_request("OPTIONS", url, 9))) == 200
        time.sleep(2.0)
        viewer.assert_flowing(t0)
    finally:
        viewer.close()


def test_with_auth_a_token_for_another_path_cannot_join(
        hub_factory: Callable[..., HubServer], media: Callable[[str], Path]) -> None:
    import json
    import urllib.request

    srv = hub_factory("--shards", "1", "--fronts", "2", "--auth")
    admin = srv.token()
    req = urllib.request.Request(f"{srv.base}/api/v1/users?token={admin}", method="POST",
                                 data=json.dumps({"name": "alice", "password": "pw",
                                                  "pull": "/live/other"}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    alice = srv.token("alice", "pw")
    url = srv.rtsp_url("/live/wsp").replace("rtsp://", "rtsp://admin:admin@")
    with Pusher(url, media("h264")):
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{srv.base}/streams/live/wsp.flv?token={admin}", timeout=2) as r:
                    if r.read(3) == b"FLV":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, srv.log()[-3000:]
            time.sleep(0.2)
        watcher = FlvWatcher(srv.port, "/live/wsp", f"token={admin}").start()
        viewer = WspViewer(srv.port, "/live/wsp", f"token={admin}")
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            # alice may watch /live/other; her token must not buy the admin's session.
            status = attempt_join(srv.port, f"/streams/live/other?token={alice}", viewer.channel)
            assert status != 200, "a JOIN with another user's token for another path was accepted"
            # Nor on the viewer's own path (she has no right to it: refused at the door).
            status = attempt_join(srv.port, f"/streams/live/wsp?token={alice}", viewer.channel)
            assert status != 200
            time.sleep(3.0)
            viewer.assert_flowing(t0)
            watcher.assert_flowing(t0)
        finally:
            viewer.close()
            watcher.stop()
