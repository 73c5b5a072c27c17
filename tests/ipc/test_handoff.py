"""Moving an accepted TCP connection, with the bytes already read, to another process."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Awaitable, Callable

from hub.ipc.channel import IpcChannel
from hub.ipc.handoff import adopt_socket, already_read_of, send_socket
from hub.ipc.messages import ALREADY_READ, HANDOFF_RTSP

from .conftest import Peers
from .support import Recorder

Run = Callable[[Callable[[], Awaitable[Any]]], Any]

OPTIONS = b"OPTIONS rtsp://127.0.0.1/live RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: test\r\n\r\n"
ANNOUNCE = b"ANNOUNCE rtsp://127.0.0.1/live RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 0\r\n\r\n"


def listener() -> socket.socket:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.setblocking(False)
    return ls


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), 5)


def test_handoff_to_child_replays_then_continues(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        loop = asyncio.get_running_loop()
        rec = Recorder()
        ch = IpcChannel(sock, rec)
        ls = listener()
        reader, writer = await asyncio.open_connection(*ls.getsockname())
        conn, _ = await loop.sock_accept(ls)
        writer.write(OPTIONS)
        await writer.drain()
        # Read only part of the request, as a sniffer would: the rest stays
        # in the kernel buffer and must reach the child after the replay.
        head = await loop.sock_recv(conn, 10)
        assert head == OPTIONS[:len(head)] and head
        send_socket(ch, HANDOFF_RTSP({"path": "/live", "peer": "", "user": ""}), conn, head)
        conn.close()
        ls.close()
        await rec.wait_notices(1)
        assert rec.notices[0] == ("adopted", {"pid": proc.pid, "replayed": len(head)})
        writer.write(ANNOUNCE)
        assert await read_exactly(reader, len(OPTIONS) + len(ANNOUNCE)) == OPTIONS + ANNOUNCE
        # The conversation goes on over the same TCP connection.
        for i in range(3):
            line = f"GET_PARAMETER {i}\r\n".encode()
            writer.write(line)
            assert await read_exactly(reader, len(line)) == line
        writer.close()
        ch.close()
    run(body)
    assert proc.wait(timeout=5) == 0


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.got = bytearray()
        self.more = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(bytes(data))
        self.got += data
        self.more.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.more.set()


def test_adopt_socket_in_process(run: Run) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        a.sendall(b"new bytes")          # already waiting in the kernel before adoption
        inner = Collect()
        transport, proto = await adopt_socket(loop, os.dup(b.fileno()), lambda: inner, b"replayed|")
        b.close()
        assert proto is inner and transport.get_protocol() is inner
        while bytes(inner.got) != b"replayed|new bytes":
            inner.more.clear()
            await asyncio.wait_for(inner.more.wait(), 2)
        assert inner.events[:2] == ["made", b"replayed|"]
        transport.write(b"back")
        a.setblocking(False)
        assert await asyncio.wait_for(loop.sock_recv(a, 10), 2) == b"back"
        a.close()
        await asyncio.wait_for(inner.more.wait(), 2)
        while inner.events[-1] != "lost":
            inner.more.clear()
            await asyncio.wait_for(inner.more.wait(), 2)
    run(body)


def test_adopt_tcp_sets_nodelay_and_handles_empty_replay(run: Run) -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        ls = listener()
        client = socket.create_connection(ls.getsockname())
        conn, _ = await loop.sock_accept(ls)
        inner = Collect()
        transport, _ = await adopt_socket(loop, conn.detach(), lambda: inner, b"")
        assert inner.events == ["made"]
        s = transport.get_extra_info("socket")
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        transport.close()
        client.close()
        ls.close()
    run(body)


def test_already_read_round_trip_in_args() -> None:
    assert already_read_of({ALREADY_READ: b"abc"}) == b"abc"
    assert already_read_of({}) == b""
    assert already_read_of({ALREADY_READ: "not bytes"}) == b""
