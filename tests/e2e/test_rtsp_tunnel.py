"""RTSP over HTTP tunnelling with FFmpeg's own client (PyAV, rtsp_transport=http)
against two fronts: the GET and the POST land on either front, so several
plays cover both the same-front and the handed-over POST."""

from __future__ import annotations

import base64
import socket
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e

HANDED = "POST handed over by another front"


def test_ffmpeg_plays_through_the_http_tunnel(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/tun")
    plays = 0
    while plays < 3 or (HANDED not in hub.log() and plays < 12):
        res = play(hub.rtsp_url("/live/tun"), frames=50 if plays == 0 else 10,
                   options={"rtsp_transport": "http"})
        assert res.video_codec == "h264" and (res.width, res.height) == (640, 360), res.log
        assert res.video_frames >= (50 if plays == 0 else 10) and res.decode_errors == 0, res.log
        plays += 1
    assert HANDED in hub.log()


def _recv_until(s: socket.socket, marker: bytes, timeout: float = 5.0) -> bytes:
    out = bytearray()
    deadline = time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def test_tunnel_by_hand_and_bad_halves(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/tun")
    cookie = b"c0ffee-by-hand"
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as get:
        get.sendall(b"GET /live/tun HTTP/1.0\r\nx-sessioncookie: " + cookie +
                    b"\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
        head = _recv_until(get, b"\r\n\r\n")
        assert head == (b"HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\n"
                        b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as post:
            post.sendall(b"POST /live/tun HTTP/1.0\r\nx-sessioncookie: " + cookie +
                         b"\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n")
            req = f"OPTIONS rtsp://127.0.0.1:{hub.port}/live/tun RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()
            text = base64.b64encode(req)
            for i in range(0, len(text), 5):  # chunks that split base64 groups
                post.sendall(text[i:i + 5])
                time.sleep(0.002)
            r = _recv_until(get, b"\r\n\r\n")
            assert r.startswith(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n") and b"Public: " in r
            # Whichever front it lands on, a second GET may not take the cookie.
            for _ in range(4):
                with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as dup:
                    dup.sendall(b"GET /live/tun HTTP/1.0\r\nx-sessioncookie: " + cookie +
                                b"\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
                    assert _recv_until(dup, b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
            # Garbage base64 closes the POST, never the session.
            post.sendall(b"!!!!")
            assert post.recv(100) == b""
        # The GET still serves the session: a new POST half carries on.
        with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as post:
            post.sendall(b"POST /live/tun HTTP/1.0\r\nx-sessioncookie: " + cookie +
                         b"\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n" + base64.b64encode(
                             f"OPTIONS rtsp://127.0.0.1:{hub.port}/live/tun RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode()))
            assert _recv_until(get, b"\r\n\r\n").startswith(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n")
    # A POST nobody waits for gets 404; a GET without a cookie 400.
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as s:
        s.sendall(b"POST /live/tun HTTP/1.0\r\nx-sessioncookie: nobody\r\n"
                  b"Content-Type: application/x-rtsp-tunnelled\r\n\r\n")
        assert _recv_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as s:
        s.sendall(b"GET /live/tun HTTP/1.0\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
        assert _recv_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def _post_from(host: str, port: int, cookie: bytes, body: bytes) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((host, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /live/tun2 HTTP/1.0\r\nx-sessioncookie: " + cookie +
              b"\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n" + body)
    return s


def test_a_post_from_another_address_feeds_nothing(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """The cookie is the client's text, maybe a guessable one: a POST from
    another address than its GET's (127.0.0.2 here, still loopback) is
    answered as one with an unknown cookie, on whichever front it lands,
    and its requests never reach the session. A POST nobody's GET waits
    for is answered at once, not after a wait."""
    push("/live/tun2")
    cookie = b"guessable-1"
    opts = f"OPTIONS rtsp://127.0.0.1:{hub.port}/live/tun2 RTSP/1.0\r\nCSeq: %d\r\n\r\n"
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as get:
        get.sendall(b"GET /live/tun2 HTTP/1.0\r\nx-sessioncookie: " + cookie +
                    b"\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
        assert _recv_until(get, b"\r\n\r\n").startswith(b"HTTP/1.0 200 OK\r\n")
        handed_before = hub.log().count(HANDED)
        for _ in range(12):  # new source ports: both fronts get some
            with _post_from("127.0.0.2", hub.port, cookie, base64.b64encode((opts % 9).encode())) as bad:
                assert _recv_until(bad, b"\r\n\r\n").startswith(b"HTTP/1.1 404 ")
                assert bad.recv(100) == b""  # then closed
        log = hub.log()
        assert log.count("tunnel: refused a POST from 127.0.0.2") == 12
        assert log.count(HANDED) > handed_before  # refused by the GET's front after a hand-over too
        get.settimeout(0.5)
        with pytest.raises(TimeoutError):
            get.recv(100)  # nothing was answered: nothing was fed
        get.settimeout(5)
        with _post_from("127.0.0.1", hub.port, cookie, base64.b64encode((opts % 1).encode())):
            assert _recv_until(get, b"\r\n\r\n").startswith(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n")
    with socket.create_connection(("127.0.0.1", hub.port), timeout=1.0) as s:
        s.sendall(b"POST /live/tun2 HTTP/1.0\r\nx-sessioncookie: nobody-2\r\n"
                  b"Content-Type: application/x-rtsp-tunnelled\r\n\r\n")
        assert _recv_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 404 ")
