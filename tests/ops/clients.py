"""Raw players and helpers for the operations tests: they count every byte
they receive, so the server's byte counters can be checked against them.

Blocking sockets with timeouts (run them in threads to play several at once).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HOST = "127.0.0.1"


def _read_head(sock: socket.socket, deadline: float) -> tuple[bytes, bytes]:
    """(head up to and with the blank line, bytes after it)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole head: {buf[:200]!r}")
        buf += chunk
        if len(buf) > 65536:
            raise ConnectionError("head too large")
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


class FlvPlayer:
    """An HTTP-FLV player on a raw socket: `open()` reads the answer's head,
    `read_for()` counts body bytes."""

    def __init__(self, port: int, path: str, query: str = "", source: str = HOST, ws: bool = False) -> None:
        self.port, self.path, self.query, self.source, self.ws = port, path, query, source, ws
        self.sock: socket.socket | None = None
        self.status = 0
        self.body = 0

    def open(self, timeout: float = 5.0) -> int:
        self.sock = socket.create_connection((HOST, self.port), timeout, source_address=(self.source, 0))
        q = f"?{self.query}" if self.query else ""
        upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n") if self.ws else ""
        self.sock.sendall(f"GET /streams{self.path}.flv{q} HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n".encode())
        head, rest = _read_head(self.sock, time.monotonic() + timeout)
        self.status = status_of(head)
        self.body += len(rest)
        return self.status

    def read_for(self, seconds: float) -> int:
        sock = self.sock
        assert sock is not None
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                sock.settimeout(left)
                chunk = sock.recv(65536)
            except OSError:  # the time is up, or close() from another thread
                break
            if not chunk:
                break
            self.body += len(chunk)
        return self.body

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader in another thread
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class RtspPlayer:
    """An RTSP player over TCP (interleaved): DESCRIBE, SETUP each track,
    PLAY, then counts every byte after the PLAY answer."""

    def __init__(self, port: int, path: str, source: str = HOST, auth: str = "") -> None:
        self.port, self.path, self.source = port, path, source
        self.auth = f"Authorization: {auth}\r\n" if auth else ""
        self.url = f"rtsp://{HOST}:{port}{path}"
        self.sock: socket.socket | None = None
        self.cseq = 0
        self.session = ""
        self.body = 0
        self._rest = b""

    def request(self, method: str, url: str, extra: str = "", timeout: float = 5.0,
                body: bytes = b"") -> tuple[int, bytes, bytes]:
        """(status, head, body) of one request."""
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout, source_address=(self.source, 0))
        self.cseq += 1
        session = f"Session: {self.session}\r\n" if self.session else ""
        extra += self.auth
        if body:
            extra += f"Content-Length: {len(body)}\r\n"
        self.sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\n{session}{extra}\r\n".encode() + body)
        head, rest = _read_head(self.sock, time.monotonic() + timeout)
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            self.sock.settimeout(timeout)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in a body")
            rest += chunk
        body, self._rest = rest[:n], rest[n:]
        s = re.search(rb"(?im)^session:\s*([^;\r\n]+)", head)
        if s:
            self.session = s.group(1).decode().strip()
        return status_of(head), head, body

    def setup_all(self) -> int:
        """DESCRIBE and SETUP every track; the first status that is not 200."""
        status, _, sdp = self.request("DESCRIBE", self.url, "Accept: application/sdp\r\n")
        if status != 200:
            return status
        controls = re.findall(rb"(?m)^a=control:(\S+)", sdp)
        tracks = [c.decode() for c in controls if c != b"*"]
        for i, control in enumerate(tracks):
            url = control if control.startswith("rtsp://") else f"{self.url}/{control}"
            status, _, _ = self.request("SETUP", url,
                                        f"Transport: RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}\r\n")
            if status != 200:
                return status
        return 200

    def play(self) -> int:
        status, _, _ = self.request("PLAY", self.url, "Range: npt=0.000-\r\n")
        self.body += len(self._rest)
        return status

    def read_for(self, seconds: float) -> int:
        sock = self.sock
        assert sock is not None
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                sock.settimeout(left)
                chunk = sock.recv(65536)
            except OSError:  # the time is up, or close() from another thread
                break
            if not chunk:
                break
            self.body += len(chunk)
        return self.body

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader in another thread
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class CountingProxy:
    """A TCP forwarder that counts the bytes a client sends to the server:
    what a publisher pushed, measured outside the server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server((HOST, 0))
        self.port = int(self.listener.getsockname()[1])
        self.upstream_bytes = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.target_port), 5)
            self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if count:
                    with self._lock:
                        self.upstream_bytes += len(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.listener.close()
        for s in self._socks:
            s.close()


@dataclass
class Prometheus:
    """Debian's prometheus on a loopback port, scraping the tree every second."""

    port: int
    proc: subprocess.Popen[bytes]
    folder: Path
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.folder / "prometheus.log"

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        args = {"query": expr}
        if at is not None:
            args["time"] = f"{at:.3f}"
        url = f"http://{HOST}:{self.port}/api/v1/query?" + urllib.parse.urlencode(args)
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.loads(r.read())
        assert data["status"] == "success", data
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of a scalar-like query (None when it has no series)."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, ok: Callable[[float | None], bool], timeout: float = 15.0) -> float | None:
        deadline = time.monotonic() + timeout
        got: float | None = None
        while time.monotonic() < deadline:
            got = self.value(expr)
            if ok(got):
                return got
            time.sleep(0.25)
        raise AssertionError(f"{expr} = {got} after {timeout} s\n{self.log.read_text()[-2000:]}")

    def targets_up(self) -> bool:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/api/v1/targets", timeout=5) as r:
            data = json.loads(r.read())
        active = data["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


def metrics(port: int, query: str = "", headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics, parsed by prometheus-client: {(sample name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    req = urllib.request.Request(f"http://{HOST}:{port}/metrics{query}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out
