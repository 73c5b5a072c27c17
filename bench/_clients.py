"""Light raw-socket players of every protocol the server serves, for load
generation (bench/players.py, bench/soak.py, bench/chaos.py).

Each does its protocol's handshake with asyncio streams, checks the status
codes, and from then on only counts media bytes: the transport is switched
to a counting protocol (no parsing, no copies, one callback per read), so
thousands fit in a few processes. Spoken as tests/e2e/ speaks them:

    http-flv  GET /streams/PATH.flv
    ws-flv    GET /streams/PATH.flv + WebSocket upgrade
    rtsp      DESCRIBE, SETUP per track (interleaved), PLAY
    rtsp-udp  DESCRIBE, SETUP per track (client_port), PLAY; RTP over UDP
    hls       playlist, then each new segment, polled
    wsp       control + data WebSockets: INIT, JOIN, WRAP(DESCRIBE/SETUP/PLAY)
    rtsp-ws   WebSocket subprotocol `rtsp`: requests as text, `$` as binary
    tunnel    RTSP over HTTP: GET half (answers and data), POST half (base64)
    rtmp      simple handshake, connect, createStream, play (app/stream from the
              path); counting starts after NetStream.Play.Start. Sends no
              acknowledgements (the server does not wait for them).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import struct
import time
from typing import Any, Protocol

PROTOCOLS = ("rtsp", "rtsp-udp", "http-flv", "ws-flv", "hls", "wsp", "rtsp-ws", "tunnel", "rtmp")
STEP_TIMEOUT = 10.0
#: The first playlist waits for the segmenter's first segment (one GOP or more).
HLS_FIRST_TIMEOUT = 25.0


class ClientError(Exception):
    """A refused or broken handshake; `kind` is a short key for counting."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Sink(Protocol):
    def on_bytes(self, n: int) -> None: ...


class Counter:
    """The cheapest sink: a byte count."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0

    def on_bytes(self, n: int) -> None:
        self.bytes += n


class _Count(asyncio.Protocol):
    """What a transport speaks once the handshake is over."""

    def __init__(self, sink: Sink, lost: asyncio.Future[None]) -> None:
        self.on_bytes = sink.on_bytes
        self.lost = lost

    def data_received(self, data: bytes) -> None:
        self.on_bytes(len(data))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _CountUdp(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self.on_bytes = sink.on_bytes

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_bytes(len(data))


class Player:
    """A playing session: `lost` resolves when the server ends it."""

    def __init__(self) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Writers are kept, not just transports: a collected StreamWriter closes its transport.
        self._transports: list[asyncio.BaseTransport | asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.local_port = 0  # of the first TCP connection: which front serves it

    def tcp_open(self) -> int:
        """TCP connections of this player still open (each holds one fd in the server)."""
        return sum(1 for t in self._transports if isinstance(t, asyncio.StreamWriter) and not t.is_closing())

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for tr in self._transports:
            tr.close()
        if not self.lost.done():
            self.lost.set_result(None)


def _count_from_now(player: Player, r: asyncio.StreamReader, w: asyncio.StreamWriter, sink: Sink) -> None:
    """Hand the connection to a counting protocol; bytes already buffered count too."""
    buffered = r._buffer  # type: ignore[attr-defined]  # what came with the last answer
    if buffered:
        sink.on_bytes(len(buffered))
        buffered.clear()
    tr: Any = w.transport  # a ReadTransport too
    tr.set_protocol(_Count(sink, player.lost))
    if not tr.is_reading():  # StreamReader pauses reading past its limit
        tr.resume_reading()


async def _open(host: str, port: int, player: Player) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 20), STEP_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as e:
        raise ClientError("connect", str(e)) from None
    w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    player._transports.append(w)
    if not player.local_port:
        player.local_port = w.get_extra_info("sockname")[1]
    return r, w


async def _head(r: asyncio.StreamReader, what: str, timeout: float = STEP_TIMEOUT) -> tuple[int, str]:
    """One HTTP/RTSP response head: (status, text of the head)."""
    try:
        raw = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.TimeoutError:
        raise ClientError("timeout", what) from None
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        raise ClientError("closed", what) from None
    head = raw.decode("latin-1")
    parts = head.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ClientError("garbled", f"{what}: {head[:40]!r}")
    return int(parts[1]), head


def _header(head: str, name: str) -> str:
    m = re.search(rf"(?im)^{name}:\s*(.*?)\r?$", head)
    return m.group(1).strip() if m else ""


def _expect(status: int, what: str, ok: tuple[int, ...] = (200,)) -> None:
    if status not in ok:
        raise ClientError(f"status {status}", what)


def _tracks(sdp: str) -> list[str]:
    """Each media section's control attribute (trackID=N), in order."""
    out: list[str] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append("")
        elif line.startswith("a=control:") and out:
            out[-1] = line[len("a=control:"):].strip()
    return [c or f"trackID={i}" for i, c in enumerate(out)]


def _track_url(url: str, control: str) -> str:
    return control if "://" in control else f"{url.rstrip('/')}/{control}"


# -- RTSP engine, over any carrier --------------------------------------------------
class _Rtsp:
    """Request/response over some carrier; `send(text)` and `recv()` -> (status, head, body)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cseq = 0
        self.session = ""

    async def send(self, text: str) -> None:
        raise NotImplementedError

    async def recv(self) -> tuple[int, str, str]:
        raise NotImplementedError

    async def ask(self, method: str, uri: str, extra: str = "") -> tuple[str, str]:
        self.cseq += 1
        text = f"{method} {uri} RTSP/1.0\r\nCSeq: {self.cseq}\r\n{extra}"
        if self.session:
            text += f"Session: {self.session}\r\n"
        await self.send(text + "\r\n")
        status, head, body = await self.recv()
        _expect(status, method)
        s = _header(head, "session")
        if s:
            self.session = s.split(";")[0].strip()
        return head, body

    async def play(self, transports: list[str]) -> None:
        """DESCRIBE, one SETUP per track with transports[i], PLAY."""
        _, sdp = await self.ask("DESCRIBE", self.url, "Accept: application/sdp\r\n")
        tracks = _tracks(sdp)
        if not tracks:
            raise ClientError("no tracks", self.url)
        for i, ctl in enumerate(tracks[:len(transports)]):
            await self.ask("SETUP", _track_url(self.url, ctl), f"Transport: {transports[i]}\r\n")
        await self.ask("PLAY", self.url, "Range: npt=0.000-\r\n")


class _RtspStream(_Rtsp):
    """RTSP on a TCP stream (plain RTSP, or the GET half of a tunnel)."""

    def __init__(self, url: str, r: asyncio.StreamReader, w: asyncio.StreamWriter | None) -> None:
        super().__init__(url)
        self.r, self.w = r, w

    async def send(self, text: str) -> None:
        assert self.w is not None
        self.w.write(text.encode())

    async def recv(self) -> tuple[int, str, str]:
        while True:  # `$` packets before an answer are skipped
            first = await asyncio.wait_for(self.r.readexactly(1), STEP_TIMEOUT)
            if first == b"$":
                n = struct.unpack(">xH", await self.r.readexactly(3))[0]
                await self.r.readexactly(n)
                continue
            status, head = await _head(self.r, "rtsp")
            head = first.decode("latin-1") + head
            n = int(_header(head, "content-length") or 0)
            body = (await self.r.readexactly(n)).decode("latin-1") if n else ""
            return int(head.split(" ", 2)[1]), head, body


class _RtspTunnel(_RtspStream):
    """Requests go base64-encoded on the POST half."""

    def __init__(self, url: str, r: asyncio.StreamReader, post: asyncio.StreamWriter) -> None:
        super().__init__(url, r, None)
        self.post = post

    async def send(self, text: str) -> None:
        self.post.write(base64.b64encode(text.encode()))


# -- WebSocket (client side: masked frames out, unmasked frames in) -------------------
def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + masked


async def ws_recv(r: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame: (opcode, payload)."""
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", await r.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", await r.readexactly(8))[0]
    return b0 & 0x0F, await r.readexactly(n)


async def ws_text(r: asyncio.StreamReader, timeout: float = STEP_TIMEOUT) -> str:
    """The next text message; binary ones before it are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            op, data = await asyncio.wait_for(ws_recv(r), max(0.01, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise ClientError("timeout", "ws answer") from None
        except (asyncio.IncompleteReadError, OSError):
            raise ClientError("closed", "ws answer") from None
        if op == 1:
            return data.decode("latin-1")
        if op == 8:
            raise ClientError("closed", "ws close frame")


async def ws_open(host: str, port: int, path: str, player: Player,
                  subprotocol: str = "") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await _open(host, port, player)
    key = base64.b64encode(os.urandom(16)).decode()
    proto = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
    w.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n").encode())
    status, _ = await _head(r, "ws upgrade")
    _expect(status, "ws upgrade", (101,))
    return r, w


class _RtspWs(_Rtsp):
    def __init__(self, url: str, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        super().__init__(url)
        self.r, self.w = r, w

    async def send(self, text: str) -> None:
        self.w.write(ws_frame(text.encode()))

    async def recv(self) -> tuple[int, str, str]:
        return _split(await ws_text(self.r))


def _split(text: str) -> tuple[int, str, str]:
    head, _, body = text.partition("\r\n\r\n")
    parts = head.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ClientError("garbled", head[:40])
    return int(parts[1]), head, body


class _Wsp(_Rtsp):
    """RTSP WRAPped in WSP on the control socket."""

    def __init__(self, url: str, r: asyncio.StreamReader, w: asyncio.StreamWriter, seq: int) -> None:
        super().__init__(url)
        self.r, self.w, self.seq = r, w, seq

    async def send(self, text: str) -> None:
        self.seq += 1
        self.w.write(ws_frame(f"WSP/1.1 WRAP\r\nseq: {self.seq}\r\n\r\n{text}".encode()))

    async def recv(self) -> tuple[int, str, str]:
        status, _, payload = _split(await ws_text(self.r))
        _expect(status, "wsp wrap")
        return _split(payload)


# -- the players -----------------------------------------------------------------------
async def open_player(proto: str, host: str, port: int, path: str, sink: Sink) -> Player:
    """Start playing `path` over `proto`; media bytes go to `sink.on_bytes`.
    Raises ClientError when refused; the caller closes the returned Player."""
    player = Player()
    try:
        await _start(proto, host, port, path, sink, player)
    except BaseException:
        player.close()
        raise
    return player


async def _start(proto: str, host: str, port: int, path: str, sink: Sink, player: Player) -> None:
    url = f"rtsp://{host}:{port}{path}"
    tcp = "RTP/AVP/TCP;unicast;interleaved={}-{}"
    interleaved = [tcp.format(2 * i, 2 * i + 1) for i in range(4)]
    try:
        if proto == "http-flv":
            r, w = await _open(host, port, player)
            w.write(f"GET /streams{path}.flv HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            status, _ = await _head(r, "flv")
            _expect(status, "flv")
            _count_from_now(player, r, w, sink)
        elif proto == "ws-flv":
            r, w = await ws_open(host, port, f"/streams{path}.flv", player)
            _count_from_now(player, r, w, sink)
        elif proto == "rtsp":
            r, w = await _open(host, port, player)
            await _RtspStream(url, r, w).play(interleaved)
            _count_from_now(player, r, w, sink)
        elif proto == "rtsp-udp":
            r, w = await _open(host, port, player)
            loop = asyncio.get_running_loop()
            transports = []
            for _ in range(4):  # RTP and RTCP ports for up to two tracks
                tr, _p = await loop.create_datagram_endpoint(lambda: _CountUdp(sink), local_addr=(host, 0))
                player._transports.append(tr)
                transports.append(tr.get_extra_info("sockname")[1])
            specs = [f"RTP/AVP;unicast;client_port={transports[2 * i]}-{transports[2 * i + 1]}" for i in range(2)]
            await _RtspStream(url, r, w).play(specs)
            _count_from_now(player, r, w, Counter())  # the control connection: only its end matters
        elif proto == "rtsp-ws":
            r, w = await ws_open(host, port, f"/streams{path}", player, "rtsp")
            await _RtspWs(url, r, w).play(interleaved)
            _count_from_now(player, r, w, sink)
        elif proto == "wsp":
            cr, cw = await ws_open(host, port, f"/streams{path}", player, "control")
            cw.write(ws_frame(f"WSP/1.1 INIT\r\nproto: rtsp\r\nhost: {host}\r\nport: {port}\r\nseq: 1\r\n\r\n"
                              .encode()))
            status, head, _ = _split(await ws_text(cr))
            _expect(status, "wsp init")
            channel = _header(head, "channel")
            dr, dw = await ws_open(host, port, f"/streams{path}", player, "data")
            dw.write(ws_frame(f"WSP/1.1 JOIN\r\nchannel: {channel}\r\nseq: 1\r\n\r\n".encode()))
            status, _, _ = _split(await ws_text(dr))
            _expect(status, "wsp join")
            await _Wsp(url, cr, cw, 1).play(interleaved)
            _count_from_now(player, dr, dw, sink)
            player._tasks.append(asyncio.create_task(_drain(cr)))  # keep the control socket read
        elif proto == "tunnel":
            cookie = base64.b16encode(os.urandom(8)).decode()
            gr, gw = await _open(host, port, player)
            gw.write(f"GET {path} HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
                     f"Accept: application/x-rtsp-tunnelled\r\n\r\n".encode())
            status, _ = await _head(gr, "tunnel get")
            _expect(status, "tunnel get")
            _, pw = await _open(host, port, player)
            pw.write(f"POST {path} HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n"
                     f"Content-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n".encode())
            await _RtspTunnel(url, gr, pw).play(interleaved)
            _count_from_now(player, gr, gw, sink)
        elif proto == "rtmp":
            r, w = await _open(host, port, player)
            await _rtmp_play(r, w, host, port, path, sink)
            _count_from_now(player, r, w, sink)
        elif proto == "hls":
            first = await _hls_playlist(host, port, path, player, HLS_FIRST_TIMEOUT)
            player._tasks.append(asyncio.create_task(_hls_loop(host, port, path, sink, player, first)))
        else:
            raise ValueError(f"unknown protocol {proto}")
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        raise ClientError("closed", f"{proto}: {type(e).__name__}") from None
    except asyncio.TimeoutError:
        raise ClientError("timeout", proto) from None


async def _drain(r: asyncio.StreamReader) -> None:
    try:
        while await r.read(65536):
            pass
    except OSError:
        pass


async def _http_get(host: str, port: int, target: str, player: Player, timeout: float) -> bytes:
    r, w = await _open(host, port, player)
    try:
        w.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        status, head = await _head(r, target, timeout)
        _expect(status, "hls " + ("playlist" if target.endswith(".m3u8") else "segment"))
        n = _header(head, "content-length")
        body = await asyncio.wait_for(r.readexactly(int(n)) if n else r.read(), STEP_TIMEOUT)
        return body
    finally:
        w.close()
        player._transports.remove(w)


async def _hls_playlist(host: str, port: int, path: str, player: Player, timeout: float) -> list[str]:
    text = (await _http_get(host, port, f"/streams{path}.m3u8", player, timeout)).decode("latin-1")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


async def _hls_loop(host: str, port: int, path: str, sink: Sink, player: Player, uris: list[str]) -> None:
    """Fetch the newest segment, then each new one; the playlist every second."""
    seen: set[str] = set(uris[:-1])
    try:
        while True:
            for uri in uris:
                if uri not in seen:
                    seen.add(uri)
                    sink.on_bytes(len(await _http_get(host, port, uri, player, STEP_TIMEOUT)))
            await asyncio.sleep(1.0)
            uris = await _hls_playlist(host, port, path, player, STEP_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except (ClientError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        if not player.lost.done():
            player.lost.set_result(None)


# -- RTMP (client side: simple handshake, AMF0 commands, 128-byte chunks) -----------
def _amf(*values: Any) -> bytes:
    """AMF0 for what a player's commands hold: strings, numbers, None, dicts."""
    out = bytearray()
    for v in values:
        if v is None:
            out += b"\x05"
        elif isinstance(v, str):
            raw = v.encode()
            out += b"\x02" + struct.pack(">H", len(raw)) + raw
        elif isinstance(v, (int, float)):
            out += b"\x00" + struct.pack(">d", float(v))
        elif isinstance(v, dict):
            out += b"\x03"
            for k, item in v.items():
                key = k.encode()
                out += struct.pack(">H", len(key)) + key + _amf(item)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(type(v).__name__)
    return bytes(out)


def _rtmp_command(stream_id: int, *values: Any) -> bytes:
    """One AMF0 command on chunk stream 3, in 128-byte chunks (the default size)."""
    body = _amf(*values)
    head = bytes((3,)) + b"\x00\x00\x00" + len(body).to_bytes(3, "big") + b"\x14" + struct.pack("<I", stream_id)
    parts = [head, body[:128]]
    for off in range(128, len(body), 128):
        parts += [b"\xc3", body[off:off + 128]]
    return b"".join(parts)


async def _rtmp_play(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str, port: int, path: str,
                     sink: Sink) -> None:
    app, _, name = path.strip("/").partition("/")
    w.write(b"\x03" + bytes(8) + os.urandom(1528))  # C0, C1 (simple: time and zero version)
    s0s1s2 = await asyncio.wait_for(r.readexactly(3073), STEP_TIMEOUT)
    w.write(s0s1s2[1:1537]  # C2 echoes S1
            + _rtmp_command(0, "connect", 1, {"app": app, "flashVer": "LNX 9,0,124,2",
                                              "tcUrl": f"rtmp://{host}:{port}/{app}"})
            + _rtmp_command(0, "createStream", 2, None)
            + _rtmp_command(1, "play", 3, None, name, -2))
    seen = bytearray()
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        at = seen.find(b"NetStream.Play.Start")
        if at >= 0:
            sink.on_bytes(len(seen) - at)  # what came with the answer
            return
        for refusal in (b"NetStream.Play.StreamNotFound", b"NetStream.Play.Failed", b"_error"):
            if refusal in seen:
                raise ClientError("refused", refusal.decode())
        if len(seen) > 1 << 20:
            raise ClientError("garbled", "no NetStream.Play.Start")
        part = await asyncio.wait_for(r.read(65536), max(0.01, deadline - time.monotonic()))
        if not part:
            raise ClientError("closed", "rtmp play")
        seen += part
