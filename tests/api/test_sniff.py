"""One port, three protocols: RTSP, media HTTP and the API, told apart by the first bytes."""

from __future__ import annotations

import socket
import time

from tests.conftest import HubServer


def _exchange(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)


def test_api_crossdomain_and_unknown(hub: HubServer) -> None:
    r = _exchange(hub.port, b"GET /api/crossdomain.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 200 ") and b"application/xml" in r and b"<cross-domain-policy>" in r
    r = _exchange(hub.port, b"GET /streams/crossdomain.xml HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 200 ") and b"<cross-domain-policy>" in r
    r = _exchange(hub.port, b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 404 ") and b'{"error"' in r


def test_media_paths_answer_404_for_unknown_streams(hub: HubServer) -> None:
    for path in (b"/streams/live/nonexist.flv", b"/streams/live/nonexist.m3u8", b"/ws/live/x.flv",
                 b"/streams/live/test.mp4", b"/streams/live/single/99999.ts"):
        r = _exchange(hub.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.startswith(b"HTTP/1.1 404 "), (path, r)
        assert b"Access-Control-Allow-Origin: *" in r
    r = _exchange(hub.port, b"GET /streams/live/single/abc.ts HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 400 ") and b"Path illegal" in r


def test_api_keeps_alive_on_one_connection(hub: HubServer) -> None:
    with socket.create_connection(("127.0.0.1", hub.port), timeout=3) as s:
        for _ in range(3):
            s.sendall(b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            while len(body) < length:
                body += s.recv(4096)
            assert head.startswith(b"HTTP/1.1 200") and b"application/json" in head.lower()


def test_rtsp_options_on_the_same_port(hub: HubServer) -> None:
    r = _exchange(hub.port, b"OPTIONS rtsp://127.0.0.1/live/a RTSP/1.0\r\nCSeq: 7\r\n\r\n", timeout=1.0)
    assert r.startswith(b"RTSP/1.0 200 OK\r\n") and b"CSeq: 7\r\n" in r and b"Public:" in r


def _response(s: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body) from `s`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    while len(body) < length:
        body += s.recv(4096)
    return head + b"\r\n\r\n" + body


def test_garbage_is_closed_and_others_untouched(hub: HubServer) -> None:
    with socket.create_connection(("127.0.0.1", hub.port), timeout=3) as keep:
        keep.sendall(b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(keep).startswith(b"HTTP/1.1 200")
        assert _exchange(hub.port, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03") == b""
        assert _exchange(hub.port, b"HELLO there friend\r\n\r\n").startswith(b"HTTP/1.1 400")
        r = _exchange(hub.port, b"DESCRIBE rtsp://x/" + b"a" * 9000 + b" RTSP/1.0\r\n\r\n")
        assert r.startswith(b"RTSP/1.0 400")
        r = _exchange(hub.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
        assert r.startswith(b"HTTP/1.1 431")
        # An HTTP request whose path says RTSP is still HTTP (431, not RTSP 400).
        r = _exchange(hub.port, b"GET /live/RTSP/" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
        assert r.startswith(b"HTTP/1.1 431"), r[:40]
        r = _exchange(hub.port, b"GET /streams/x.flv HTTP/1.1\r\n" + b"X-Pad: y\r\n" * 2000 + b"\r\n")
        assert r.startswith(b"HTTP/1.1 431")
        keep.sendall(b"GET /api/v1/server HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(keep).startswith(b"HTTP/1.1 200")


def test_api_cors_preflight(hub: HubServer) -> None:
    r = _exchange(hub.port, b"OPTIONS /api/v1/users HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n"
                            b"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n")
    head = r.split(b"\r\n\r\n")[0].lower()
    assert r.startswith(b"HTTP/1.1 204") and b"access-control-allow-origin: *" in head
    assert b"access-control-allow-headers: authorization, content-type" in head
