"""RTSP Basic auth checks the password's scrypt hash off the front's event
loop: a burst of DESCRIBEs with Basic credentials must not stall the other
clients of the same front (issue 9: "RTSP Basic auth runs scrypt on the
front's event loop per request")."""

from __future__ import annotations

import base64
import socket
import statistics
import threading
import time
from typing import Callable

import pytest

from hub.auth.passwords import hash_password, verify_password
from tests.conftest import HubServer

pytestmark = pytest.mark.e2e


def _describe(port: int, auth: str) -> bytes:
    return (f"DESCRIBE rtsp://127.0.0.1:{port}/live/x RTSP/1.0\r\nCSeq: 2\r\n"
            f"Authorization: Basic {auth}\r\n\r\n").encode()


def _pinger(port: int, stop: threading.Event, out: list[float]) -> None:
    """Small API requests on one kept-alive connection; their round trips."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        req = b"GET /api/crossdomain.xml HTTP/1.1\r\nHost: x\r\n\r\n"
        while not stop.is_set():
            t0 = time.monotonic()
            s.sendall(req)
            buf = b""
            while b"</cross-domain-policy>" not in buf:
                chunk = s.recv(65536)
                assert chunk, "front closed the ping connection"
                buf += chunk
            out.append(time.monotonic() - t0)
            time.sleep(0.01)


def test_basic_auth_burst_does_not_stall_the_front(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--auth", env={"HUB_AUTH_SCHEME": "basic"})
    # One scrypt check here, to size the burst: enough of them to stall a
    # loop that ran them inline for well over a second.
    stored = hash_password("x")
    t0 = time.monotonic()
    verify_password(stored, "y")
    one = time.monotonic() - t0
    burst = max(24, min(200, int(1.5 / one) + 1))

    rtts: list[float] = []
    stop = threading.Event()
    pinger = threading.Thread(target=_pinger, args=(srv.port, stop, rtts), daemon=True)
    pinger.start()
    time.sleep(0.3)
    wrong = base64.b64encode(b"admin:wrong-password").decode()
    socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=20) for _ in range(burst)]
    try:
        before = len(rtts)
        for s in socks:
            s.sendall(_describe(srv.port, wrong))
        answers = []
        for s in socks:
            data = s.recv(4096)
            answers.append(data.split(b"\r\n", 1)[0])
        during = rtts[before:]
    finally:
        stop.set()
        for s in socks:
            s.close()
        pinger.join(5)
    # Every DESCRIBE is refused (401), or 503 past the bounded queue of checks.
    assert all(a in (b"RTSP/1.0 401 Unauthorized", b"RTSP/1.0 503 Service Unavailable") for a in answers), answers
    assert len(during) >= 5, f"only {len(during)} pings completed during the burst"
    # Run on the loop, each check blocks it for `one`: a ping waits on average
    # half a check. Off the loop, a ping waits for nothing of the sort.
    median = statistics.median(during)
    assert median < 0.25 * one, (f"median ping {median * 1000:.0f} ms during {burst} Basic checks "
                                 f"of {one * 1000:.0f} ms each")
