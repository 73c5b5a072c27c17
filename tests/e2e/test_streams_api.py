"""`/api/v1/streams...` with real publishers (ffmpeg) and real players on
the wire: a raw-socket RTSP player (DESCRIBE/SETUP/PLAY over TCP, then reads)
and a raw-socket HTTP-FLV player. Stream deletion and consumer kicks are
checked where a client sees them: its socket closes."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from typing import Any, Callable

import pytest

from hub.placement import shard_of
from tests.conftest import HubServer
from tests.e2e.tools import Pusher

pytestmark = pytest.mark.e2e

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


class RawPlayer:
    """A socket that keeps reading on a thread, counting bytes until EOF."""

    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self.received = len(leftover)
        self.closed = threading.Event()
        self.local = "%s:%d" % sock.getsockname()[:2]
        sock.settimeout(30)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.received += len(chunk)
        except OSError:
            pass
        finally:
            self.closed.set()

    def grows(self, within: float = 5.0) -> bool:
        start = self.received
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.received > start:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _read_head(sock: socket.socket, buf: bytearray) -> tuple[str, dict[str, str], bytes]:
    """One RTSP/HTTP response head + Content-Length body; `buf` keeps the rest."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {bytes(buf)!r}")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0")) if lines[0].startswith("RTSP") else 0
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    buf[:] = rest[length:]
    return lines[0], headers, rest[:length]


def rtsp_play(srv: HubServer, path: str) -> RawPlayer:
    """DESCRIBE, SETUP every track interleaved over TCP, PLAY."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    buf = bytearray()
    url = srv.rtsp_url(path)
    cseq = 0
    session = ""

    def request(method: str, uri: str, extra: str = "") -> tuple[str, dict[str, str], bytes]:
        nonlocal cseq
        cseq += 1
        sess = f"Session: {session}\r\n" if session else ""
        sock.sendall(f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{sess}{extra}\r\n".encode())
        status, headers, body = _read_head(sock, buf)
        assert status.split()[1] == "200", (method, status)
        return status, headers, body

    _s, headers, sdp = request("DESCRIBE", url, "Accept: application/sdp\r\n")
    base = headers.get("content-base", url + "/")
    controls = [ln[len("a=control:"):].strip() for ln in sdp.decode().splitlines()
                if ln.startswith("a=control:") and ln.strip() != "a=control:*"]
    assert len(controls) == 2, sdp
    for i, ctl in enumerate(controls):
        track = ctl if ctl.startswith("rtsp://") else base.rstrip("/") + "/" + ctl
        _s, headers, _b = request("SETUP", track,
                                  f"Transport: RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}\r\n")
        session = headers["session"].split(";")[0]
    request("PLAY", url, "Range: npt=0.000-\r\n")
    return RawPlayer(sock, bytes(buf))


def flv_play(srv: HubServer, path: str) -> RawPlayer:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.sendall(f"GET /streams{path}.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    buf = bytearray()
    status, _h, _b = _read_head(sock, buf)
    assert status.split()[1] == "200", status
    return RawPlayer(sock, bytes(buf))


def api(srv: HubServer, method: str, path: str, token: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path + ("&" if "?" in path else "?") + "token=" + token)
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def admin_token(srv: HubServer) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("POST", "/api/v1/login", body=json.dumps({"username": "admin", "password": "admin"}))
    token = json.loads(conn.getresponse().read())["access_token"]
    conn.close()
    return str(token)


def wait_for(what: Callable[[], Any], timeout: float = 10.0, why: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = what()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out: {why} (last: {last!r})")


def check_stream_fields(s: dict[str, Any], path: str) -> None:
    assert s["path"] == path
    assert RFC3339.match(s["start_on"])
    assert re.match(r"^127\.0\.0\.1:\d+$", s["addr"]), s["addr"]
    assert s["size"] > 0
    v, a = s["video"], s["audio"]
    assert (v["codec"], v["width"], v["height"], v["clockrate"]) == ("H264", 640, 360, 90000)
    assert a["codec"] == "AAC" and a["samplerate"] == 44100 and a["channels"] == 1


def test_consumers_listed_kicked_and_stream_deleted(hub: HubServer, push: Callable[..., Pusher]) -> None:
    pusher = push("/live/test")
    token = admin_token(hub)
    rtsp = rtsp_play(hub, "/live/test")
    flv = flv_play(hub, "/live/test")
    try:
        assert rtsp.grows() and flv.grows()

        def both_flowing() -> dict[str, Any] | None:
            status, s = api(hub, "GET", "/api/v1/streams/live/test?c=1", token)
            ok = (status == 200 and s["cc"] == 2 and len(s.get("cs", [])) == 2
                  and all(c["flow"]["outbytes"] > 0 for c in s["cs"]))
            return s if ok else None

        s = wait_for(both_flowing, why="cc == 2 with bytes out to both players")
        check_stream_fields(s, "/live/test")
        by_type = {c["packet_type"]: c for c in s["cs"]}
        assert set(by_type) == {"RTP", "FLV"}
        assert by_type["RTP"]["extra"] == "net=rtsp-tcp"
        assert by_type["FLV"]["extra"] == f"net=http-flv,{flv.local}"
        for c in s["cs"]:
            assert isinstance(c["id"], int) and RFC3339.match(c["start_on"])
            assert set(c["flow"]) == {"inbytes", "outbytes"}
        assert by_type["RTP"]["id"] != by_type["FLV"]["id"]

        # Without c=1: the count only; the list says the same.
        status, plain = api(hub, "GET", "/api/v1/streams/live/test", token)
        assert status == 200 and plain["cc"] == 2 and "cs" not in plain
        status, page = api(hub, "GET", "/api/v1/streams?c=1", token)
        assert status == 200 and page["total"] == 1 and page["next_page_token"] == "/live/test"
        assert {c["id"] for c in page["streams"][0]["cs"]} == {c["id"] for c in s["cs"]}
        status, page = api(hub, "GET", "/api/v1/streams", token)
        assert page["streams"][0]["cc"] == 2 and "cs" not in page["streams"][0]

        # size counts what the publisher sends: it grows.
        size0 = plain["size"]
        wait_for(lambda: api(hub, "GET", "/api/v1/streams/live/test", token)[1]["size"] > size0,
                 why="size grows")

        # Kick the RTSP player: its socket closes, the FLV player goes on.
        status, _ = api(hub, "DELETE", f"/api/v1/streams/live/test:consumer?cid={by_type['RTP']['id']}", token)
        assert status == 200
        assert rtsp.closed.wait(5), "kicked RTSP player still connected"
        assert not flv.closed.is_set() and flv.grows()
        s = wait_for(lambda: (lambda r: r if r["cc"] == 1 else None)(
            api(hub, "GET", "/api/v1/streams/live/test?c=1", token)[1]), why="cc back to 1")
        assert [c["packet_type"] for c in s["cs"]] == ["FLV"]
        assert s["cs"][0]["id"] == by_type["FLV"]["id"]

        # Delete the stream: the player is cut, the publisher too, and it is gone.
        status, _ = api(hub, "DELETE", "/api/v1/streams/live/test", token)
        assert status == 200
        assert flv.closed.wait(5), "FLV player of a deleted stream still connected"
        wait_for(lambda: api(hub, "GET", "/api/v1/streams/live/test", token)[0] == 404, 5,
                 why="deleted stream still listed")
        assert api(hub, "GET", "/api/v1/streams", token)[1]["total"] == 0
        wait_for(lambda: not pusher.alive(), 10, why="publisher of a deleted stream still connected")
    finally:
        rtsp.close()
        flv.close()


def test_paging_across_shards(hub: HubServer, push: Callable[..., Pusher]) -> None:
    candidates = [f"/page/s{i}" for i in range(20)]
    shards = {p: shard_of(p, 2) for p in candidates}
    paths = [p for p in candidates if shards[p] == 0][:2] + [p for p in candidates if shards[p] == 1][:1]
    assert len(paths) == 3 and {shards[p] for p in paths} == {0, 1}
    for p in paths:
        push(p)
    token = admin_token(hub)
    want = sorted(paths)

    got, page_token, pages = [], "", 0
    while True:
        status, page = api(hub, "GET", f"/api/v1/streams?page_size=1&page_token={page_token}", token)
        assert status == 200 and page["total"] == 3
        pages += 1
        if not page["streams"]:
            assert page["next_page_token"] == page_token
            break
        assert len(page["streams"]) == 1
        got.append(page["streams"][0]["path"])
        assert page["next_page_token"] == got[-1]
        page_token = page["next_page_token"]
        assert pages < 10
    assert got == want

    status, page = api(hub, "GET", f"/api/v1/streams?page_size=2&page_token={want[0]}", token)
    assert [s["path"] for s in page["streams"]] == want[1:] and page["next_page_token"] == want[2]
    status, page = api(hub, "GET", "/api/v1/streams", token)
    assert [s["path"] for s in page["streams"]] == want
    for s in page["streams"]:
        check_stream_fields(s, s["path"])
        assert s["cc"] == 0
    for p in paths:
        status, one = api(hub, "GET", f"/api/v1/streams{p}", token)
        assert status == 200 and one["path"] == p
