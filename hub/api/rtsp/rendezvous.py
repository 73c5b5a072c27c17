"""Handing a connection to the front that holds its session.

Two halves, one session, several fronts: the kernel (SO_REUSEPORT) may give
the GET to one front and the POST to another. The front that holds a
GET (or a WSP control session) listens on a Linux abstract Unix socket named
after the instance and the pairing key (session cookie, WSP channel); a front
that gets the other half and does not hold the key itself connects there and
passes the TCP socket (SCM_RIGHTS) plus the bytes it already read, exactly as
a publisher is handed to a shard. The kernel's namespace is the registry: no
supervisor round trip, and a key nobody holds fails at once (ECONNREFUSED).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import struct
from typing import Callable

from ...errors import ProtocolError
from ...ipc.handoff import adopt_socket

log = logging.getLogger("hub.api.rtsp.rendezvous")

_LEN = struct.Struct(">I")


def rendezvous_name(instance: str, kind: str, key: str) -> str:
    """Abstract socket name for a pairing key (hashed: cookies are client text)."""
    digest = hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:24]
    return f"\0ipchub-py-{instance}-{kind}-{digest}"


class Rendezvous:
    """Listens on one abstract name; each incoming hand-over becomes a call
    `on_socket(fd, already_read)`. Closed with the session that owns it."""

    def __init__(self, name: str, on_socket: Callable[[int, bytes], None]) -> None:
        self.on_socket = on_socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(name)
            self.sock.listen(8)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        # The sender wrote everything before we could accept, and it is one of
        # our own processes on this host: a short blocking read is safe.
        with conn:
            conn.settimeout(1.0)
            try:
                fd, data = _receive(conn)
            except (OSError, ProtocolError) as e:
                log.warning("socket hand-over failed: %s", e)
                return
        self.on_socket(fd, data)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


def _receive(conn: socket.socket) -> tuple[int, bytes]:
    msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 1)
    if len(fds) != 1 or len(msg) < _LEN.size:
        for fd in fds:
            socket.close(fd)
        raise ProtocolError("hand-over without a socket")
    want = _LEN.unpack_from(msg)[0]
    parts = [msg[_LEN.size:]]
    got = len(parts[0])
    while got < want:
        chunk = conn.recv(min(65536, want - got))
        if not chunk:
            socket.close(fds[0])
            raise ProtocolError("hand-over cut short")
        parts.append(chunk)
        got += len(chunk)
    return fds[0], b"".join(parts)


def hand_over(name: str, transport: asyncio.Transport, already_read: bytes) -> bool:
    """Pass `transport`'s socket and `already_read` to whoever listens on
    `name`; False (socket untouched) when nobody does. On success the
    transport is closed here; the receiver's copy keeps the TCP connection."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        try:
            s.connect(name)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        payload = _LEN.pack(len(already_read)) + already_read
        sent = socket.send_fds(s, [payload], [sock.fileno()])
        if sent < len(payload):
            s.sendall(payload[sent:])
    finally:
        s.close()
    transport.close()
    return True


async def adopt(fd: int, factory: Callable[[], asyncio.Protocol], already_read: bytes) -> None:
    try:
        await adopt_socket(asyncio.get_running_loop(), fd, factory, already_read)
    except OSError as e:
        log.info("adopting a handed-over socket failed: %s", e)
