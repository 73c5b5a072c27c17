"""A player closed gracefully (its stream ended, it sent a WebSocket Close or
deleteStream) while bytes were queued for it: `close()` waits for them to
leave, forever if the client stopped reading, holding them and the socket.
`Consumer.close` now drops such a client once it takes nothing for the
stuck bound; a client that reads gets everything, then the close.

Real sockets on loopback, under asyncio and uvloop; the bound is shortened."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

import pytest
import uvloop

from hub.api.play import consumer as consumer_mod
from hub.api.play.consumer import Consumer

QUEUED = 4 << 20
BOUND = 0.5


class _Server(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.made = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.made.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


async def _closed_player(read: bool) -> tuple[bool, int]:
    """A consumer with QUEUED bytes queued, closed: (lost within 6 bounds, bytes the client got)."""
    loop = asyncio.get_running_loop()
    server = _Server()
    srv = await loop.create_server(lambda: server, "127.0.0.1", 0)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    try:
        await loop.sock_connect(client, srv.sockets[0].getsockname())
        await server.made
        assert server.transport is not None
        player = Consumer(server.transport, "FLV", "net=http-flv")
        player.write_direct(b"x" * QUEUED)
        player.close()
        got = 0

        async def drain() -> None:
            nonlocal got
            while chunk := await loop.sock_recv(client, 1 << 16):
                got += len(chunk)

        reader = loop.create_task(drain()) if read else None
        try:
            await asyncio.wait_for(asyncio.shield(server.lost), 6 * BOUND)
            lost = True
        except asyncio.TimeoutError:
            lost = False
        if reader is not None:
            await asyncio.wait_for(reader, 5)
        return lost, got
    finally:
        client.close()
        srv.close()


def _run(runner: Callable[[Any], Any], read: bool) -> tuple[bool, int]:
    return runner(_closed_player(read))  # type: ignore[no-any-return]


RUNNERS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_a_closed_player_that_does_not_read_is_dropped(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_mod, "STUCK_SECONDS", BOUND)
    lost, _ = _run(RUNNERS[loop], read=False)
    assert lost, "a closed player that never reads is still held"


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_a_closed_player_that_reads_gets_everything(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_mod, "STUCK_SECONDS", BOUND)
    lost, got = _run(RUNNERS[loop], read=True)
    assert lost and got == QUEUED
