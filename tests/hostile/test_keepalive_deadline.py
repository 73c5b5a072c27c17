"""Defect 6: no deadline on the second request of a kept-alive HTTP connection.

Only a connection's first request head was timed (the sniffer's 10 s). A
client that got its first answer and then dribbled the head of a second
request, one byte a second, held the connection forever — on the REST API
and on a media path alike (a kept-alive connection's `/streams/...` request
is handed to the media protocol with what arrived so far). Every request
head must be whole within the same deadline as the first.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import FlvWatcher, problems, read_response

pytestmark = pytest.mark.e2e

HEAD_DEADLINE = 10.0
SLACK = 3.0


def _dribble_second_request(port: int, second: bytes, at_once: int = 0) -> tuple[float | None, str]:
    """First request answered on a kept-alive connection, then `second`:
    its first `at_once` bytes in one write, the rest one byte a second.
    Seconds until the server closed (None if it never did within the
    deadline and slack), and what happened."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(s)
        assert status == 200 and headers.get("connection", "").lower() != "close"
        t0 = time.monotonic()
        s.sendall(second[:at_once])
        s.settimeout(1.0)
        i = at_once
        while time.monotonic() - t0 < HEAD_DEADLINE + SLACK:
            try:
                s.send(second[i % len(second):i % len(second) + 1])
                i += 1
                data = s.recv(4096)
                if not data:
                    return time.monotonic() - t0, "closed"
                return time.monotonic() - t0, f"answered {data[:60]!r}"
            except socket.timeout:
                continue
            except OSError as e:
                return time.monotonic() - t0, f"{type(e).__name__}"
        return None, f"still open after {i} bytes"


def test_second_request_heads_have_a_deadline(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    push("/live/ka")
    watcher = watch(hub, "/live/ka")
    t0 = time.monotonic()
    media = b"GET /streams/live/ka.flv HTTP/1.1\r\nHost: x\r\nX-Dribble: " + b"a" * 64
    # (head, bytes sent at once): the media request's first line at once is
    # handed to the media protocol with half a head; dribbled from its first
    # byte it stays with the HTTP protocol.
    heads = {"api": (b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\nX-Dribble: " + b"a" * 64, 0),
             "media": (media, 0), "media-line-at-once": (media, 35)}
    out: dict[str, tuple[float | None, str]] = {}
    threads = [threading.Thread(target=lambda k=k, h=h: out.__setitem__(k, _dribble_second_request(hub.port, *h)))
               for k, h in heads.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HEAD_DEADLINE + SLACK + 10)
    for kind, (took, what) in out.items():
        assert took is not None, f"{kind}: a dribbled second request head held the connection: {what}"
        assert took <= HEAD_DEADLINE + SLACK, (kind, took, what)
    assert len(out) == 3
    watcher.assert_flowing(t0, context=problems(hub))
