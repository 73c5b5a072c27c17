"""A publisher replaced on a live path; a player that stops reading."""

from __future__ import annotations

import socket
import time
from typing import Callable

import psutil
import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e


def _flv_socket(port: int, path: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /streams{path}.flv HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    return s


def _drain_until_closed(s: socket.socket, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if not s.recv(1 << 20):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def test_second_publisher_replaces_first_and_closes_its_players(
        hub: HubServer, push: Callable[..., Pusher], media: Callable[[str], object]) -> None:
    """ipchub's rule: a new publisher on a live path replaces the old one. The
    old stream's players are closed cleanly (their connection ends); new
    players get the new publisher's stream."""
    first = push("/live/replace", "h264")
    player = _flv_socket(hub.port, "/live/replace")
    second = Pusher(hub.rtsp_url("/live/replace"), media("h265"), "tcp").start()  # type: ignore[arg-type]
    try:
        assert _drain_until_closed(player, 10.0), "the old stream's player was not closed"
        wait_live(hub, "/live/replace")
        r = play(f"{hub.base}/streams/live/replace.flv", frames=20, timeout=15)
        assert r.video_codec == "hevc", "new players must get the new publisher's stream"
        deadline = time.monotonic() + 5
        while first.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not first.alive(), "the replaced publisher's connection should be closed"
    finally:
        second.stop()
        player.close()


def test_stuck_player_is_bounded_skipped_and_closed(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/slow", "h264")
    fronts = [p for p in hub.children() if "front-" in " ".join(p.cmdline())]
    rss0 = sum(p.memory_info().rss for p in fronts)
    # A small receive window set before connecting, so the kernel on our
    # side holds little and the server sees the back-pressure soon.
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.settimeout(5)
    stuck.connect(("127.0.0.1", hub.port))
    stuck.sendall(b"GET /streams/live/slow.flv HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        # Another player keeps playing in real time meanwhile.
        r = play(f"{hub.base}/streams/live/slow.flv", frames=100, timeout=15)
        assert r.video_frames >= 100 and r.decode_errors == 0
        rss1 = sum(p.memory_info().rss for p in fronts)
        assert rss1 - rss0 < 32 << 20, "a stuck player must not grow the front's memory"
        # Not drained for the bound (10 s after it fell behind): the server
        # drops it. Watched without reading, which would unstick it.
        deadline = time.monotonic() + 40
        while hub.get_json("/api/v1/runtime")["flv"]["active"] > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert hub.get_json("/api/v1/runtime")["flv"]["active"] == 0, hub.log()[-3000:]
        assert _drain_until_closed(stuck, 10.0), "the stuck player's connection is still open"
    finally:
        stuck.close()
    assert psutil.pid_exists(hub.proc.pid)
