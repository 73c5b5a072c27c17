"""SIGTERM drains: new connections are refused, players already there keep
receiving for the grace, then the tree exits with nothing left behind; a
second SIGTERM ends at once."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
import time
from typing import Callable

import psutil
import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.ops.clients import HOST, FlvPlayer, RtspPlayer

pytestmark = pytest.mark.e2e

PATH = "/live/drain"
GRACE = 3.0


class TimedFlv(FlvPlayer):
    """Notes when each read arrived."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(port, path)
        self.arrivals: list[tuple[float, int]] = []

    def read_until_closed(self, limit: float) -> None:
        assert self.sock is not None
        deadline = time.monotonic() + limit
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            self.arrivals.append((time.monotonic(), len(chunk)))


def alive(p: psutil.Process) -> bool:
    """Still running (an exited process not yet reaped by init is not)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def leftovers(pid: int) -> list[str]:
    shm = [n for n in os.listdir("/dev/shm") if n.startswith(f"hub-{pid}-") or n == f"ipchub-hls-{pid}"]
    run = [n for n in os.listdir(tempfile.gettempdir()) if n == f"ipchub-{pid}"]
    return shm + run


def test_drain_keeps_players_refuses_new_ones_and_exits_clean(hub_factory: Callable[..., HubServer],
                                                             push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "2", "--fronts", "2", "--drain-grace", str(GRACE))
    pusher = push(srv, PATH)
    player = TimedFlv(srv.port, PATH)
    assert player.open() == 200
    reader = threading.Thread(target=player.read_until_closed, args=(GRACE + 10,))
    reader.start()
    idle_rtsp = RtspPlayer(srv.port, PATH)  # connected before the drain, plays nothing yet
    assert idle_rtsp.request("OPTIONS", idle_rtsp.url)[0] == 200
    children = srv.children()
    time.sleep(1.0)

    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(ConnectionRefusedError):  # no front listens any more
        socket.create_connection((HOST, srv.port), 2).close()
    # A connection made before: a new session on it is refused (503), not served.
    assert idle_rtsp.setup_all() == 503
    idle_rtsp.close()

    rc = srv.proc.wait(GRACE + 5)
    exited = time.monotonic() - t0
    reader.join(5)
    assert rc == 0
    assert exited <= GRACE + 2, exited
    # The player kept receiving until the grace ended, then was closed.
    late = [t for t, _n in player.arrivals if t > t0 + GRACE - 0.5]
    assert late, f"nothing received in the grace's last half second ({len(player.arrivals)} reads)"
    assert sum(n for t, n in player.arrivals if t > t0) > 50_000
    assert [p.pid for p in children if alive(p)] == []
    assert leftovers(srv.proc.pid) == []
    assert "draining" in srv.log() and "drain grace over" in srv.log()
    assert pusher.proc is not None and pusher.proc.wait(5) is not None  # the server closed its connection


def test_second_sigterm_ends_at_once(hub_factory: Callable[..., HubServer], push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--drain-grace", "30")
    push(srv, PATH)
    player = FlvPlayer(srv.port, PATH)
    assert player.open() == 200
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert srv.proc.poll() is None  # draining: a player holds it
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 4.0
    player.close()
    assert leftovers(srv.proc.pid) == []


def test_drain_without_sessions_exits_before_the_grace(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--drain-grace", "30")
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5.0
    assert "drained: no players or publishers left" in srv.log()
