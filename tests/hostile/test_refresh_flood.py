"""A stranger's flood of `/api/v1/refreshtoken`: the path needs no token,
and every request went to the supervisor, which copied the whole users
table under the stores' one lock before finding the token was junk. With
no users but the admin, 32 connections of junk kept the supervisor at half
a core; with 300 users (50 rights masks each) at 1.3 cores, answering 19
refreshes a second, and an admin's user change waited 8 s behind them.

Now a front checks a refresh token against its own copy of the users
(signature, type, expiry, user, session generation) and answers 401
itself: junk, an access token, an expired or an already rotated refresh
token never reach the supervisor. Only a current refresh token does, and
the supervisor checks it again before it copies anything.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.request

import psutil
import pytest

from tests.conftest import HubServer
from tests.hostile.harness import flood_connections, ipc_requests

pytestmark = pytest.mark.e2e

CONNECTIONS = 16
SECONDS = 3.0


def _refresh(conn: http.client.HTTPConnection, token: str) -> tuple[int, bytes]:
    conn.request("GET", f"/api/v1/refreshtoken?token={token}")
    r = conn.getresponse()
    return r.status, r.read()


def _login(srv: HubServer) -> dict[str, str]:
    req = urllib.request.Request(srv.base + "/api/v1/login", method="POST",
                                 data=json.dumps({"username": "admin", "password": "admin"}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        pair: dict[str, str] = json.loads(r.read())
    return pair


def _refreshes_asked(srv: HubServer) -> int:
    """How many refreshes the fronts asked the supervisor."""
    return ipc_requests(srv, "refresh")


def test_junk_refresh_tokens_do_not_reach_the_supervisor(hub: HubServer) -> None:
    pair = _login(hub)
    rotated = _refresh(http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10), pair["refresh_token"])
    assert rotated[0] == 200, rotated
    current = json.loads(rotated[1])["refresh_token"]
    asked = _refreshes_asked(hub)
    # Junk, an access token, a rotated refresh token: what a stranger holds.
    junk = ["junk", pair["access_token"], pair["refresh_token"],
            current[:-4] + ("AAAA" if not current.endswith("AAAA") else "BBBB")]
    supervisor = psutil.Process(hub.proc.pid)
    cpu0 = sum(supervisor.cpu_times()[:2])
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    sent = [0] * CONNECTIONS

    def one(i: int, conn: http.client.HTTPConnection) -> None:
        status, _ = _refresh(conn, junk[sent[i] % len(junk)])
        sent[i] += 1
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    flood_connections(hub.port, CONNECTIONS, SECONDS, one)
    cpu = sum(supervisor.cpu_times()[:2]) - cpu0
    assert set(statuses) == {401}, statuses
    assert sum(statuses.values()) >= 100, statuses
    assert _refreshes_asked(hub) == asked, "a refresh token no user holds reached the supervisor"
    assert cpu < 0.25 * SECONDS, f"the supervisor spent {cpu:.2f} s of CPU on {statuses}"
    # The one current refresh token still rotates, once.
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
    status, body = _refresh(conn, current)
    assert status == 200, body
    assert _refresh(conn, current)[0] == 401
    assert _refresh(conn, json.loads(body)["refresh_token"])[0] == 200


def test_a_valid_refresh_token_in_a_loop_is_limited(hub: HubServer) -> None:
    """A user's own refresh tokens, each rotated as soon as it comes back,
    on four sessions at once: ~260 rotations a second, each a copy, an
    fsync'd file and a broadcast of the users table (the supervisor at half
    a core with the admin alone in it). Now a user gets ROTATION_BURST, then
    one every ROTATION_EVERY seconds; the rest are 429 with Retry-After and
    change nothing."""
    from hub.store.sessions import ROTATION_BURST, ROTATION_EVERY

    tokens = [_login(hub)["refresh_token"] for _ in range(4)]
    supervisor = psutil.Process(hub.proc.pid)
    cpu0 = sum(supervisor.cpu_times()[:2])
    statuses: dict[int, int] = {}
    retry_after: set[str | None] = set()
    lock = threading.Lock()

    def one(i: int, conn: http.client.HTTPConnection) -> None:
        conn.request("GET", f"/api/v1/refreshtoken?token={tokens[i]}")
        r = conn.getresponse()
        body = r.read()
        if r.status == 200:
            tokens[i] = json.loads(body)["refresh_token"]
        with lock:
            statuses[r.status] = statuses.get(r.status, 0) + 1
            if r.status == 429:
                retry_after.add(r.getheader("Retry-After"))

    flood_connections(hub.port, len(tokens), SECONDS, one)
    cpu = sum(supervisor.cpu_times()[:2]) - cpu0
    assert set(statuses) == {200, 429}, statuses
    assert statuses[200] <= ROTATION_BURST + SECONDS / ROTATION_EVERY + 1, statuses
    assert statuses[429] >= 100, statuses
    assert retry_after == {str(int(ROTATION_EVERY))}, retry_after
    assert cpu < 0.25 * SECONDS, f"the supervisor spent {cpu:.2f} s of CPU on {statuses}"
    # Every token left is still current: a refused refresh changed nothing.
    status, body = _refresh(http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10), tokens[0])
    assert status in (200, 429), body
