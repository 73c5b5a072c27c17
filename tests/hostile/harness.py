"""What every hostile test needs: a player that watches, the tree's memory,
and raw clients for the protocols an attacker speaks.

- `FlvWatcher`: an HTTP-FLV player attached before the attack, in its own
  thread, parsing tags with `hub.media.flv.FlvReader` and recording when each
  arrived, so a test can assert that it kept receiving with no gap > 1 s.
- `TreeMemory`: PSS summed over the supervisor and all its children (shared
  pages, the rings, counted once), sampled in the background during an
  attack so the peak is seen, not only what is left after it.
- `RawWs`: a WebSocket client on a plain socket that can do what a polite
  library will not (flood pings, never read).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import threading
import time
import urllib.request
import weakref
from dataclasses import dataclass, field
from typing import Callable

import psutil

from hub.media.flv import FlvReader, FlvTag, TAG_VIDEO
from hub.media.websocket import PING, TEXT, mask
from tests.conftest import HubServer

MiB = 1 << 20


# -- a player attached before the attack -----------------------------------------
@dataclass
class FlvWatcher:
    """Plays `/streams<path>.flv` over HTTP-FLV and records arrival times.

    `arrivals` holds (monotonic time, tag type) of every FLV tag; `error`
    what ended the connection early (None while it plays)."""

    port: int
    path: str
    query: str = ""
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    error: str | None = None
    ended_at: float | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch{self.path}", daemon=True)

    def start(self, frames: int = 10, timeout: float = 10.0) -> FlvWatcher:
        """Connect, and return once `frames` video tags arrived."""
        self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        q = f"?{self.query}" if self.query else ""
        self._sock.sendall(f"GET /streams{self.path}.flv{q} HTTP/1.1\r\nHost: watcher\r\n\r\n".encode())
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.video_count() < frames:
            if self.error is not None or time.monotonic() > deadline:
                raise AssertionError(f"watcher of {self.path} did not start playing: {self.error}")
            time.sleep(0.05)
        return self

    def _run(self) -> None:
        assert self._sock is not None
        sock = self._sock
        sock.settimeout(0.5)
        head = bytearray()
        reader = FlvReader()
        try:
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(1 << 16)
                except socket.timeout:
                    continue
                if not chunk:
                    self.error = "connection closed by the server"
                    break
                now = time.monotonic()
                if head is not None:
                    head += chunk
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    if not head.startswith(b"HTTP/1.1 200"):
                        self.error = f"answered {bytes(head[:40])!r}"
                        break
                    chunk = bytes(head[end + 4:])
                    head = None  # type: ignore[assignment]
                reader.feed(chunk)
                tags = [(now, ev.tag_type) for ev in reader.events() if isinstance(ev, FlvTag)]
                with self._lock:
                    self.arrivals.extend(tags)
        except Exception as e:  # noqa: BLE001 - whatever it was, the test reports it
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.ended_at = time.monotonic()

    def video_count(self) -> int:
        with self._lock:
            return sum(1 for _t, kind in self.arrivals if kind == TAG_VIDEO)

    def video_times(self) -> list[float]:
        with self._lock:
            return [t for t, kind in self.arrivals if kind == TAG_VIDEO]

    def assert_flowing(self, since: float, bound: float = 1.0, until: float | None = None,
                       context: str = "") -> float:
        """Video kept arriving from `since` to `until` (now), never more than
        `bound` seconds apart, and the connection is still open. Returns the
        largest gap seen. `context` (the server's complaints) goes into the
        failure message."""
        until = time.monotonic() if until is None else until
        assert self.error is None, f"the watcher of {self.path} stopped: {self.error}\n{context}"
        times = [since, *(t for t in self.video_times() if since < t <= until), until]
        gaps = [b - a for a, b in zip(times, times[1:])]
        worst = max(gaps)
        assert worst <= bound, (f"the watcher of {self.path} saw a gap of {worst:.2f} s "
                                f"(bound {bound} s) over {until - since:.1f} s\n{context}")
        return worst

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()


# -- the tree's memory --------------------------------------------------------------
class TreeMemory:
    """PSS (bytes) of the supervisor and all its children.

    PSS counts shared pages (the rings, shared libraries) once over the tree
    instead of once per process as RSS would."""

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.hub.proc.pid)
        return [root, *root.children(recursive=True)]

    def sample(self) -> int:
        total = 0
        for p in self.processes():
            try:
                total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def watch(self, interval: float = 0.1) -> PeakSampler:
        return PeakSampler(self, interval)


class PeakSampler:
    """`with tree.watch() as peak:` samples in the background; `peak.growth`
    is the highest sample minus the one taken on entry."""

    def __init__(self, tree: TreeMemory, interval: float) -> None:
        self.tree = tree
        self.interval = interval
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self.before = self.peak = self.tree.sample()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.tree.sample())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, self.tree.sample())

    @property
    def growth(self) -> int:
        return self.peak - self.before

    def assert_bounded(self, bound: int, what: str) -> None:
        assert self.growth <= bound, (f"{what}: the tree grew by {self.growth / MiB:.0f} MiB "
                                      f"(bound {bound / MiB:.0f} MiB; {self.before / MiB:.0f} MiB before)")


def assert_floods_bounded(srv: HubServer, watcher: FlvWatcher, floods: list[Callable[[], socket.socket]],
                          seconds: float, bound: int, session_timeout: float, what: str) -> None:
    """Run each flood in a thread of its own, the tree's memory sampled
    meanwhile; each returns the socket its session answers on, which it no
    longer reads. Then: the tree grew by at most `bound`, `watcher` played
    on, and the server dropped every one of those sockets within the
    session timeout (+5 s) once they are not read."""
    tree = TreeMemory(srv)
    socks: list[socket.socket] = []
    t0 = time.monotonic()
    try:
        with tree.watch() as peak:
            threads = [threading.Thread(target=lambda f=f: socks.append(f())) for f in floods]
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds + 10)
        assert len(socks) == len(floods), problems(srv)
        peak.assert_bounded(bound, what)
        watcher.assert_flowing(t0, context=problems(srv))
        deadline = time.monotonic() + session_timeout + 5.0
        for s in socks:
            s.setblocking(True)
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            except TimeoutError:
                raise AssertionError(f"{what}: a flooding client was never dropped") from None
    finally:
        for s in socks:
            s.close()


# -- raw clients -----------------------------------------------------------------------
def ws_frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """A masked client frame (the server refuses unmasked ones)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n <= 0xFFFF:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


class RawWs:
    """A WebSocket on a plain socket: the handshake, then bytes as we like."""

    def __init__(self, port: int, target: str, subprotocol: str | None = None,
                 rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # set before connecting: the window is fixed then
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        proto = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
        self.sock.sendall((f"GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n{proto}\r\n").encode())
        head = bytearray()
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)  # byte by byte: leave the frames in the kernel
            if not chunk:
                raise AssertionError(f"closed during the handshake: {bytes(head)!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"no upgrade: {bytes(head[:200])!r}")

    def send(self, payload: bytes, opcode: int = TEXT) -> None:
        self.sock.sendall(ws_frame(payload, opcode))

    def flood_pings(self, seconds: float, payload: bytes = b"p" * 125,
                    opcode: int = PING) -> tuple[int, str | None]:
        """Send pings (or another control frame: `opcode`) as fast as the
        server takes them for `seconds`, never reading; returns (bytes sent,
        why it stopped early or None)."""
        frame = ws_frame(payload, opcode)
        blob = frame * 512
        sent = 0
        self.sock.settimeout(0.5)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                sent += self.sock.send(blob)
            except socket.timeout:
                continue  # the server is not reading right now
            except OSError as e:
                return sent, f"{type(e).__name__}: {e}"
        return sent, None

    def dropped_by_server(self, timeout: float) -> bool:
        """Without reading (reading would unstick us): True once the server
        reset or closed the connection, seen by a send failing or by an EOF
        behind what is queued for us."""
        return dropped_without_reading(self.sock, timeout, ws_frame(b"?", PING))

    def closed_by_server(self, timeout: float) -> bool:
        """Read (and drop) what the server sent until it closes; True if it did."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(1 << 20):
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def flood_connections(port: int, connections: int, seconds: float,
                      one: Callable[[int, http.client.HTTPConnection], None]) -> None:
    """`connections` threads, each on its own kept-alive HTTP connection,
    calling `one(i, conn)` over and over for `seconds`; the first error a
    thread met is raised here."""
    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < stop:
                one(i, conn)
        except BaseException as e:  # handed to the test's thread, raised there
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    if errors:
        raise errors[0]


def ipc_requests(srv: HubServer, method: str) -> int:
    """How many `method` requests went over the tree's IPC (its /metrics)."""
    with urllib.request.urlopen(srv.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf'^ipchub_ipc_request_seconds_count\{{method="{method}"\}} (\S+)$', text, re.M)
    return int(float(m.group(1))) if m else 0


def dropped_without_reading(sock: socket.socket, timeout: float, probe: bytes = b"x") -> bool:
    """Without reading (reading would unstick a server that waits for us):
    True once sending `probe` fails, i.e. the server reset the connection."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sock.send(probe, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass
        except OSError:
            return True
        time.sleep(0.25)
    return False


def http_exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a fresh connection; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return read_response(s, timeout)


#: Bytes read past one answer (the next pipelined one's), per socket.
_AHEAD: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(s: socket.socket, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (or to the close). Bytes
    of the next answer read with it (pipelined answers coalesce into one
    read when the reader lags) are kept for the next call on `s`."""
    s.settimeout(timeout)
    buf = bytearray(_AHEAD.pop(s, b""))
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"closed before a response head: {bytes(buf)!r}")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    body = bytearray(rest)
    if "content-length" in headers:
        want = int(headers["content-length"])
        while len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        if len(body) > want:
            _AHEAD[s] = bytes(body[want:])
            del body[want:]
    return status, headers, bytes(body)


def problems(hub: HubServer, limit: int = 20) -> str:
    """The tree's WARNING and ERROR log lines (the last `limit`)."""
    lines = [l for l in hub.log().splitlines() if " WARNING " in l or " ERROR " in l]
    return "\n".join(lines[-limit:])


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that holds each new connection `delay`
    seconds before connecting it upstream: a slow source, so that opening
    a stream pulled through it takes that long."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._open.append(client)
        if self._stop.wait(self.delay):
            client.close()
            return
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        self._open.append(up)
        threading.Thread(target=self._pipe, args=(up, client), daemon=True).start()
        self._pipe(client, up)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(None)
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for s in self._open:
            s.close()
