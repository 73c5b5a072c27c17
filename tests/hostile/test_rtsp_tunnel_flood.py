"""The pipelining flood of test_rtsp_flood through the RTSP-over-HTTP tunnel:
a client opens the GET half and never reads it, and pours base64 OPTIONS
down the POST half. The answers go to the GET, a socket other than the one
the requests come in on: while they do not drain, the session stops taking
requests and the POST is paused like a plain RTSP connection's own socket.
The tree's memory stays bounded, a player attached before plays on, and
with nothing read from it the tunnel's session times out.

Both halves on one front (the POST fed locally) and on two (the POST handed
over to the GET's front) are the same code path past the pairing; one
front keeps the pairing out of the measurement."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media
from tests.hostile.harness import MiB, FlvWatcher, assert_floods_bounded

pytestmark = pytest.mark.e2e

FLOOD_SECONDS = 4.0
TIMEOUT = 3.0  # rtsp_session_timeout for this tree
MEMORY_BOUND = 32 * MiB


def _head(s: socket.socket) -> bytes:
    out = bytearray()
    while b"\r\n\r\n" not in out:
        chunk = s.recv(1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def tunnel_flood(port: int, path: str, cookie: str, seconds: float, out: dict[str, int]) -> socket.socket:
    """Opens the GET (a small receive buffer, never read past its head),
    then floods the POST with base64 OPTIONS for `seconds`; returns the GET."""
    get = socket.socket()
    get.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    get.connect(("127.0.0.1", port))
    get.sendall(f"GET {path} HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
                "Accept: application/x-rtsp-tunnelled\r\n\r\n".encode())
    assert _head(get).startswith(b"HTTP/1.0 200 OK"), "the tunnel's GET was not answered"
    post = socket.create_connection(("127.0.0.1", port), timeout=5)
    post.sendall(f"POST {path} HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
                 "Content-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n".encode())
    post.setblocking(False)
    url = f"rtsp://127.0.0.1:{port}{path}"
    # One base64 block per batch (as clients encode each request), sent whole:
    # a batch cut short goes on where it stopped.
    batch = base64.b64encode(b"".join(f"OPTIONS {url} RTSP/1.0\r\nCSeq: {i}\r\n\r\n".encode()
                                      for i in range(200)))
    sent = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                sent += post.send(batch[sent % len(batch):])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
    finally:
        post.close()
    out[cookie] = sent
    return get


def test_tunnel_clients_that_never_read_their_get_are_bounded(
        hub_factory: Callable[..., HubServer], tmp_path: Path, watch: Callable[..., FlvWatcher]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtsp_session_timeout": TIMEOUT}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    with Pusher(srv.rtsp_url("/live/tflood"), make_media(tmp_path, "h264")):
        wait_live(srv, "/live/tflood")
        watcher = watch(srv, "/live/tflood")
        sent: dict[str, int] = {}
        assert_floods_bounded(
            srv, watcher, [lambda c=c: tunnel_flood(srv.port, "/live/tflood", c, FLOOD_SECONDS, sent)
                           for c in ("flood-a", "flood-b", "flood-c")],
            FLOOD_SECONDS, MEMORY_BOUND, TIMEOUT, f"RTSP-over-HTTP request floods ({sent})")
