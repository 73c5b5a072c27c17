"""An RTSP-over-HTTP GET half that never gets its POST was held for the
session timeout (60 s): a stranger's half-open tunnels outlived a plain
RTSP connection that sends nothing (closed 10 s after its first byte).
Now a GET waits `POST_WITHIN` (10 s) for its first POST; a paired one is
not touched by it."""

from __future__ import annotations

import base64
import socket
import time

import pytest

from hub.api.rtsp.tunnel import POST_WITHIN
from tests.conftest import HubServer

pytestmark = pytest.mark.e2e


def _get(port: int, cookie: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /live/half HTTP/1.0\r\nx-sessioncookie: " + cookie +
              b"\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.0 200 OK"), head
    return s


def _options(port: int, cookie: bytes, cseq: int) -> socket.socket:
    post = socket.create_connection(("127.0.0.1", port), timeout=5)
    post.sendall(b"POST /live/half HTTP/1.0\r\nx-sessioncookie: " + cookie +
                 b"\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n" + base64.b64encode(
                     f"OPTIONS rtsp://127.0.0.1:{port}/live/half RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n".encode()))
    return post


def _answer(get: socket.socket) -> bytes:
    out = b""
    while b"\r\n\r\n" not in out:
        chunk = get.recv(4096)
        assert chunk, out
        out += chunk
    return out


def test_a_get_half_without_its_post_is_closed(hub: HubServer) -> None:
    start = time.monotonic()
    lonely = _get(hub.port, b"half-open-lonely")
    paired = _get(hub.port, b"half-open-paired")
    post = _options(hub.port, b"half-open-paired", 1)
    try:
        assert _answer(paired).startswith(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n")
        lonely.settimeout(POST_WITHIN + 5)
        assert lonely.recv(100) == b"", "the lonely GET got bytes"
        closed_after = time.monotonic() - start
        assert POST_WITHIN - 1 <= closed_after <= POST_WITHIN + 4, closed_after
        # The paired GET is still its session's: another POST half carries on.
        post.close()
        post = _options(hub.port, b"half-open-paired", 2)
        assert _answer(paired).startswith(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n")
    finally:
        for s in (lonely, paired, post):
            s.close()
