"""Moving an accepted TCP connection to another process.

The front accepts every connection, sniffs the first bytes, and hands an RTSP
publisher to the shard that owns the stream: the socket goes over the IPC
link as SCM_RIGHTS, the bytes the front already consumed go in the message.
The shard rebuilds a transport on the same socket and replays those bytes
into its protocol before anything newly received, so the publisher never
notices the move.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable, Mapping

from .channel import IpcChannel
from .messages import ALREADY_READ
from .methods import Pass


def send_socket(ch: IpcChannel, msg: Pass, sock: socket.socket,
                already_read: bytes | bytearray | memoryview) -> None:
    """Hand `sock` and the bytes already read from it to the peer.

    The channel keeps its own dup of the fd until sent; the caller closes its
    copy right after (stop reading it first: bytes read after this call would
    be lost to the receiver).
    """
    method, args = msg
    payload = {**args, ALREADY_READ: bytes(already_read)}
    ch.send_fd(method.name, payload, sock.fileno())


def already_read_of(args: Mapping[str, Any]) -> bytes:
    """The replay bytes carried by a hand-off message (b"" if none)."""
    data = args.get(ALREADY_READ, b"")
    return data if isinstance(data, bytes) else b""


class _ReplayProtocol(asyncio.Protocol):
    """Stands in for `inner` only for connection_made.

    It passes the transport to `inner`, feeds it the replayed bytes, then
    steps aside with `transport.set_protocol(inner)`: every later callback
    goes straight to `inner`. The forwarding methods cover a loop that would
    deliver a callback before the swap.
    """

    def __init__(self, inner: asyncio.Protocol, replay: bytes) -> None:
        self.inner = inner
        self.replay = replay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        inner = self.inner
        inner.connection_made(transport)
        replay, self.replay = self.replay, b""
        if replay and not transport.is_closing():
            inner.data_received(replay)
        if transport.get_protocol() is self:
            transport.set_protocol(inner)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on a transport's TCP socket (media is written as it
    comes; Nagle's delay would add to every frame's latency)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, ValueError):  # closed meanwhile (uvloop's stand-in: ValueError)
            pass


async def adopt_socket(loop: asyncio.AbstractEventLoop, fd: int,
                       protocol_factory: Callable[[], asyncio.Protocol],
                       already_read: bytes) -> tuple[asyncio.Transport, asyncio.Protocol]:
    """Build a transport on a received TCP socket fd; replay `already_read` first.

    Takes ownership of `fd`. Returns the transport and the protocol made by
    `protocol_factory` (not the replay wrapper).
    """
    sock = socket.socket(fileno=fd)
    try:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio only sets TCP_NODELAY on sockets it created itself.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        inner = protocol_factory()
        transport, _ = await loop.connect_accepted_socket(
            lambda: _ReplayProtocol(inner, bytes(already_read)), sock)
    except BaseException:
        sock.close()
        raise
    return transport, inner
