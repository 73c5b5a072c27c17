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
import os
import socket
import struct
from typing import Callable

from ...ipc.handoff import adopt_socket

log = logging.getLogger("hub.api.rtsp.rendezvous")

_LEN = struct.Struct(">I")
_PEERCRED = struct.Struct("3i")
#: A hand-over's bytes (the other front's reads) and how long they may take.
MAX_HANDOVER = 1 << 20
HANDOVER_TIMEOUT = 2.0


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
        # Any process on the host can reach an abstract name: only our own
        # user's (the tree's processes) may hand a socket over.
        pid, uid, _gid = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid != os.getuid():
            log.warning("refused a hand-over from pid %d of another user (uid %d)", pid, uid)
            conn.close()
            return
        _Incoming(conn, self._loop, self.on_socket)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()


class _Incoming:
    """One hand-over read without blocking the loop: the socket rides on the
    first byte, then a length and the bytes the other front read; at most
    MAX_HANDOVER bytes, within HANDOVER_TIMEOUT."""

    def __init__(self, conn: socket.socket, loop: asyncio.AbstractEventLoop,
                 on_socket: Callable[[int, bytes], None]) -> None:
        self.conn = conn
        self.loop = loop
        self.on_socket = on_socket
        self.fd = -1
        self.buf = bytearray()
        conn.setblocking(False)
        loop.add_reader(conn.fileno(), self._read)
        self.timer = loop.call_later(HANDOVER_TIMEOUT, self._fail, "timed out")

    def _read(self) -> None:
        try:
            if self.fd < 0:
                data, fds, _flags, _addr = socket.recv_fds(self.conn, 65536, 1)
                if len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    self._fail("no socket on the first byte")
                    return
                self.fd = fds[0]
            else:
                data = self.conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._fail(str(e))
            return
        if not data:
            self._fail("cut short")
            return
        self.buf += data
        if len(self.buf) < _LEN.size:
            return
        want = _LEN.unpack_from(self.buf)[0]
        if want > MAX_HANDOVER:
            self._fail(f"{want} bytes is over the cap")
            return
        if len(self.buf) - _LEN.size >= want:
            fd, self.fd = self.fd, -1
            payload = bytes(self.buf[_LEN.size:_LEN.size + want])
            self._end()
            self.on_socket(fd, payload)

    def _fail(self, why: str) -> None:
        log.warning("socket hand-over failed: %s", why)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._end()

    def _end(self) -> None:
        self.timer.cancel()
        if self.conn.fileno() >= 0:
            self.loop.remove_reader(self.conn.fileno())
            self.conn.close()


def hand_over(name: str, transport: asyncio.Transport, already_read: bytes) -> bool:
    """Pass `transport`'s socket and `already_read` to whoever listens on
    `name`; False (socket untouched) when nobody does, or its queue of
    hand-overs is full. On success the transport is closed here; the
    receiver's copy keeps the TCP connection. Never blocks the loop: the
    socket rides on the first send, and what of `already_read` does not fit
    in the Unix socket's buffer follows from a task, within HANDOVER_TIMEOUT."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    payload = _LEN.pack(len(already_read)) + already_read
    try:
        s.connect(name)  # abstract Unix: done at once, refused, or EAGAIN (backlog full)
        sent = socket.send_fds(s, [payload], [sock.fileno()])
    except OSError:  # nobody listens, its backlog is full, or the socket went
        s.close()
        return False
    transport.close()
    if sent < len(payload):
        task = asyncio.get_running_loop().create_task(_send_rest(s, memoryview(payload)[sent:]))
        _sending.add(task)
        task.add_done_callback(_sending.discard)
    else:
        s.close()
    return True


#: Hand-overs whose bytes are still going out.
_sending: set[asyncio.Task[None]] = set()


async def _send_rest(s: socket.socket, rest: memoryview) -> None:
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(s, rest), HANDOVER_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as e:
        log.info("a hand-over's bytes were cut short: %r", e)
    finally:
        s.close()


async def adopt(fd: int, factory: Callable[[], asyncio.Protocol], already_read: bytes) -> None:
    try:
        await adopt_socket(asyncio.get_running_loop(), fd, factory, already_read)
    except OSError as e:
        log.info("adopting a handed-over socket failed: %s", e)
