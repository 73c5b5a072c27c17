"""A kept-alive HTTP connection's later request heads were not capped, nor
pipelined requests counted.

The sniffer caps a connection's first head (8 KiB of request line, 64
headers, 16 KiB); uvicorn's httptools parser caps nothing, and uvicorn
queues pipelined requests without limit (it reads on after each answer).
One client grew a front by 2.2 GiB in 8 s with an endless header block on
its second request, by 117-134 MiB with an endless target or header value
(a core busy joining it), and by 800 MiB in 15 s pipelining small GETs.

Now every head gets the first one's caps (431), and a request that would
wait behind more than 16 others drops the connection, those waiting unrun.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

import psutil
import pytest

from tests.conftest import HubServer
from tests.hostile.harness import MiB, read_response

FIRST = b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n"
#: What a flooding client sends at most; the front may keep far less of it.
FLOOD = 8 * MiB
#: The front's growth allowed (its own noise; unbounded it grew ~15x FLOOD).
GROWTH = 24 * MiB


@pytest.fixture
def small_hub(hub_factory: Callable[..., HubServer]) -> HubServer:
    return hub_factory("--shards", "1", "--fronts", "1")


def _front(hub: HubServer) -> psutil.Process:
    return next(p for p in hub.children() if p.cmdline()[0].startswith("ipchub: front"))


def _send_until_answered(s: socket.socket, start: bytes, filler: bytes) -> bytes:
    """`start`, then `filler` over and over up to FLOOD bytes, reading as we
    go; what the server answered (b"" if nothing before FLOOD)."""
    s.sendall(start)
    s.setblocking(False)
    blob = filler * max(1, (64 << 10) // len(filler))
    sent, got = 0, b""
    deadline = time.monotonic() + 20
    while sent < FLOOD and time.monotonic() < deadline:
        try:
            got += s.recv(65536)
            if got:
                return got
        except BlockingIOError:
            pass
        except OSError:
            return got  # dropped
        try:
            sent += s.send(blob)
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    s.setblocking(True)
    s.settimeout(3)
    try:
        return got + s.recv(65536)
    except (socket.timeout, OSError):
        return got


@pytest.mark.parametrize("start, filler", [
    (b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n", b"X-A: b\r\n"),  # endless headers
    (b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\nX-A: ", b"a"),  # an endless header value
    (b"GET /api/v1/server?", b"a"),  # an endless target
], ids=["headers", "value", "target"])
def test_a_second_head_has_the_first_ones_caps(small_hub: HubServer, start: bytes, filler: bytes) -> None:
    front = _front(small_hub)
    with socket.create_connection(("127.0.0.1", small_hub.port), timeout=5) as s:
        s.sendall(FIRST)
        status, _, _ = read_response(s)
        assert status == 200
        before = front.memory_info().rss
        answer = _send_until_answered(s, start, filler)
        grown = front.memory_info().rss - before
    assert answer.startswith(b"HTTP/1.1 431"), f"answered {answer[:60]!r}"
    assert grown < GROWTH, f"the front grew by {grown / MiB:.0f} MiB"


def test_pipelined_requests_are_bounded(small_hub: HubServer) -> None:
    port = small_hub.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # a few: all answered
        s.sendall(FIRST * 8)
        for _ in range(8):
            assert read_response(s)[0] == 200
    front = _front(small_hub)
    before = front.memory_info().rss
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(FIRST)
        assert read_response(s)[0] == 200
        answered, sent, dropped = _pipeline(s)
        grown = front.memory_info().rss - before
    assert dropped, f"still served after {sent // len(FIRST)} requests pipelined ({answered} answered)"
    assert answered <= 17, f"{answered} pipelined requests answered: more were queued than the bound"
    assert grown < GROWTH, f"the front grew by {grown / MiB:.0f} MiB"


def _pipeline(s: socket.socket) -> tuple[int, int, bool]:
    """Small GETs back to back up to FLOOD bytes, reading what comes:
    (requests answered, bytes sent, whether the server dropped us)."""
    s.setblocking(False)
    blob = FIRST * ((64 << 10) // len(FIRST))
    sent, got = 0, b""
    deadline = time.monotonic() + 20
    while sent < FLOOD and time.monotonic() < deadline:
        try:
            got += s.recv(1 << 20)
        except BlockingIOError:
            pass
        except OSError:
            return got.count(b"HTTP/1.1 200"), sent, True
        try:
            sent += s.send(memoryview(blob)[sent % len(blob):])
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            return got.count(b"HTTP/1.1 200"), sent, True
    return got.count(b"HTTP/1.1 200"), sent, False
