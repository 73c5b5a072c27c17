"""Shared pieces of the publisher tests (no tests here).

`PublishBench` stands in for a front: it listens on loopback, answers a
publisher's OPTIONS itself, reads up to the end of the ANNOUNCE and hands the
socket with the bytes read to a `PublishHost` running in the test's loop,
just as `hub.api.rtsp.connection` does with `send_socket` across processes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Any

from hub.child import ChildArgs
from hub.config import Config
from hub.media.rtsp import NEED_DATA, RtspReader, RtspRequest, RtspResponse
from hub.ring import RingReader
from hub.ring.reader import RingEntry
from hub.shard.publish import PublishHost, RtspPublisher
from hub.shard.stream import Stream
from hub.shard.streams import StreamTable

TCP_INFO_BYTES_RECEIVED = 128  # offset of tcpi_bytes_received in struct tcp_info (Linux)


TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8


def tcp_info(fd: int) -> tuple[int, int]:
    """(state, bytes received) as the kernel counts them on a TCP socket.

    The count covers the sequence space after the SYN, so a received FIN
    counts as one byte.
    """
    s = socket.socket(fileno=os.dup(fd))
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    finally:
        s.close()
    return info[0], int(struct.unpack_from("=Q", info, TCP_INFO_BYTES_RECEIVED)[0])


async def tcp_payload_received(fd: int) -> int:
    """Payload bytes the peer sent, once it has closed its side (FIN excluded)."""
    await wait_for(lambda: tcp_info(fd)[0] in (TCP_CLOSE, TCP_CLOSE_WAIT), timeout=5)
    return tcp_info(fd)[1] - 1


def make_host(timeout: float = 60.0, rtp_ports: tuple[int, int] = (31000, 31999), **kw: Any) -> PublishHost:
    config = Config(rtsp_session_timeout=timeout, rtp_port_min=rtp_ports[0], rtp_port_max=rtp_ports[1],
                    shards=1, fronts=1)
    args = ChildArgs("shard", 0, -1, "tp" + os.urandom(4).hex(), tempfile.gettempdir(), config)
    streams = StreamTable(args, lambda reader, s: None)
    kw.setdefault("wall_clock", None)  # no Date header: answers compare byte for byte
    host = PublishHost(args, streams, **kw)
    HOSTS.append(host)
    return host


HOSTS: list[PublishHost] = []


def close_hosts() -> None:
    """End every session and stream the tests made (rings unlinked)."""
    while HOSTS:
        host = HOSTS.pop()
        host.close()
        host.streams.close_all()


@dataclass
class Handed:
    """One connection handed to the host."""

    session: RtspPublisher
    already_read: bytes
    front_bytes: int  # bytes the "front" consumed before the ANNOUNCE
    dup_fd: int | None = None  # kept open to read TCP_INFO after the session closed


@dataclass
class PublishBench:
    host: PublishHost
    keep_dup: bool = False
    handed: list[Handed] = field(default_factory=list)
    server: socket.socket | None = None
    port: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        self.server = s
        self.port = s.getsockname()[1]
        task = asyncio.get_running_loop().create_task(self._accept_loop())
        self._tasks.add(task)

    def url(self, path: str = "live/x") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.server is not None
        while True:
            conn, peer = await loop.sock_accept(self.server)
            task = loop.create_task(self._front(conn, peer))
            self._tasks.add(task)

    async def _front(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        """Answer OPTIONS, read the ANNOUNCE (whole), hand the socket over."""
        loop = asyncio.get_running_loop()
        reader = RtspReader()
        raw = bytearray()
        consumed = 0
        while True:
            data = await loop.sock_recv(conn, 65536)
            if not data:
                conn.close()
                return
            raw += data
            reader.feed(data)
            event = reader.next_event()
            if event is NEED_DATA:
                continue
            assert isinstance(event, RtspRequest), event
            if event.method == "OPTIONS":
                consumed += len(raw) - reader.buffered
                del raw[:len(raw) - reader.buffered]
                resp = RtspResponse(200)
                resp.headers.add("CSeq", event.headers.get("CSeq") or "0")
                resp.headers.add("Public", "OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN")
                await loop.sock_sendall(conn, bytes(resp))
                continue
            break  # the ANNOUNCE (or whatever else came): the shard's from here
        already = bytes(raw)
        dup = os.dup(conn.fileno()) if self.keep_dup else None
        fd = conn.detach()
        session = await self.host.adopt(fd, "/live/x", f"{peer[0]}:{peer[1]}", already)
        self.handed.append(Handed(session, already, consumed, dup))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.server is not None:
            self.server.close()
        self.host.close()
        self.host.streams.close_all()
        for h in self.handed:
            if h.dup_fd is not None:
                os.close(h.dup_fd)
                h.dup_fd = None


async def wait_for(predicate: Any, timeout: float = 10.0, step: float = 0.01) -> Any:
    """Poll `predicate()` until truthy (returned) or fail after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


class RingCollector:
    """Attach to a stream's ring as soon as it is live; copy everything out."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.reader = RingReader.attach(stream.ring.name)
        self.entries: list[RingEntry] = []

    def poll(self) -> None:
        while True:
            got = self.reader.read(1024)
            if not got:
                return
            self.entries.extend(got)

    def close(self) -> None:
        self.poll()
        self.reader.close()


async def run_ffmpeg(*args: str, timeout: float = 20.0) -> int:
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise AssertionError(f"ffmpeg failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return proc.returncode


async def read_response(reader: asyncio.StreamReader) -> RtspResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    resp = RtspResponse.parse(head) if b"Content-Length" not in head else None
    if resp is not None:
        return resp
    length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    return RtspResponse.parse(head + body)
