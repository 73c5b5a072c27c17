"""HEAD on HLS URLs answered with the whole body.

The media port's HLS answers (playlists, TS segments, fMP4 init segments,
segments and parts) were written the same for HEAD as for GET: the head,
then the body a HEAD must not carry (RFC 9110 9.3.2). A client that sends
HEAD, as players and proxies do to learn a segment's length, read the
body as the next response's head. Now HEAD gets the same status and
headers (Content-Length, Content-Type) and no body.

A real server, a stream pushed by FFmpeg; raw sockets read to the close.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher

PATH = "/live/head"


def _exchange(port: int, method: str, target: str) -> tuple[bytes, dict[str, str], bytes]:
    """(status line, headers, every byte after the head, to the close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = bytearray()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return lines[0].encode(), headers, rest


def _first_uri(playlist: bytes, suffix: str) -> str:
    return next(ln for ln in playlist.decode().splitlines() if ln.endswith(suffix) and not ln.startswith("#"))


@pytest.mark.parametrize("variant", ["ts", "fmp4"])
def test_head_sends_the_headers_only(hub: HubServer, push: Callable[..., Pusher], variant: str) -> None:
    push(PATH)
    playlist = f"/streams{PATH}.m3u8?variant={variant}"
    status, _, body = _exchange(hub.port, "GET", playlist)
    assert b" 200 " in status, (status, body)
    targets = [playlist]
    if variant == "ts":
        targets.append(_first_uri(body, ".ts"))
    else:
        targets.append(_first_uri(body, ".m4s"))
        init = body.decode().split('URI="', 1)[1].split('"', 1)[0]
        targets.append(init)
    for target in targets:
        got_status, got, got_body = _exchange(hub.port, "GET", target)
        head_status, head, head_body = _exchange(hub.port, "HEAD", target)
        assert got_status == head_status and b" 200 " in head_status, (target, got_status, head_status)
        assert head_body == b"", (target, len(head_body))
        assert len(got_body) == int(got["content-length"]) > 0, target
        if target != playlist:  # a playlist may have grown between the two
            assert head["content-length"] == got["content-length"], target
        assert head["content-type"] == got["content-type"], target


def test_head_on_flv_crossdomain_and_errors_sends_the_head_only(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """HEAD on a live FLV URL became a player: the stream's tags followed,
    for as long as the client stayed (a monitor's HEAD probe held a player's
    place and got the stream). crossdomain.xml and error answers carried
    their bodies too."""
    push(PATH)
    t0 = time.monotonic()
    status, headers, body = _exchange(hub.port, "HEAD", f"/streams{PATH}.flv")
    assert b" 200 " in status and headers["content-type"] == "video/x-flv", (status, headers)
    assert body == b"" and time.monotonic() - t0 < 5, (len(body), time.monotonic() - t0)
    for target, code in (("/streams/crossdomain.xml", b" 200 "), ("/streams/live/none.flv", b" 404 ")):
        got_status, got, got_body = _exchange(hub.port, "GET", target)
        head_status, head, head_body = _exchange(hub.port, "HEAD", target)
        assert code in got_status and got_status == head_status, (target, got_status, head_status)
        assert got_body and head_body == b"", (target, head_body)
        assert head["content-length"] == got["content-length"], target
