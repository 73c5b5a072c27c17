"""A stranger's flood of logins: each is one scrypt (~50 ms of CPU, 16 MiB)
in the supervisor, and anyone may POST /api/v1/login. They ran in asyncio's
default pool with no bound on how many waited: 40 a second filled both
cores and real logins queued behind them until the front gave up. Now the
supervisor hashes one at a time with at most 32 in hand: beyond that a
login is refused at once (503), players go on, and a real login works as
soon as the flood stops."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Callable

import psutil
import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import FlvWatcher, read_response

pytestmark = pytest.mark.e2e

FLOOD = 200


def _login(port: int, name: str, password: str, out: list[tuple[int, float]]) -> None:
    body = json.dumps({"username": name, "password": password}).encode()
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            status, _h, _b = read_response(s, 20)
    except OSError:
        status = 0
    out.append((status, time.monotonic() - t0))


def test_a_login_flood_is_bounded(hub: HubServer, push: Callable[..., Pusher],
                                  watch: Callable[..., FlvWatcher]) -> None:
    push("/live/login")
    watcher = watch(hub, "/live/login")
    supervisor = psutil.Process(hub.proc.pid)
    cpu0 = sum(supervisor.cpu_times()[:2])
    t0 = time.monotonic()
    results: list[tuple[int, float]] = []
    threads = [threading.Thread(target=_login, args=(hub.port, f"nobody{i}", "wrong", results))
               for i in range(FLOOD)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wall = time.monotonic() - t0
    cpu = sum(supervisor.cpu_times()[:2]) - cpu0
    statuses = [s for s, _ in results]
    assert len(results) == FLOOD
    assert set(statuses) <= {403, 503}, sorted(set(statuses))
    refused = [d for s, d in results if s == 503]
    assert refused, "200 logins at once were all hashed: nothing bounds them"
    # One scrypt at a time: the supervisor never used much more than one core.
    assert cpu <= wall * 1.0 + 0.5, (cpu, wall)
    watcher.assert_flowing(t0)
    # The flood over, the real user logs in.
    mine: list[tuple[int, float]] = []
    _login(hub.port, "admin", "admin", mine)
    assert mine[0][0] == 200, mine
