"""The cross-front hand-over's receiving side never blocks the front's loop:
a peer that connects and dribbles (or sends nothing) costs only a timer."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from hub.api.rtsp import rendezvous as rv


def test_a_silent_peer_does_not_block_the_loop() -> None:
    async def main() -> None:
        got: list[tuple[int, bytes]] = []
        name = f"\0ipchub-py-test-{os.getpid()}-{time.monotonic_ns()}"
        r = rv.Rendezvous(name, lambda fd, data: got.append((fd, data)))
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(name)
        gaps: list[float] = []
        last = time.monotonic()
        end = last + rv.HANDOVER_TIMEOUT + 0.5
        while time.monotonic() < end:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        # The silent peer was dropped at the deadline, and the loop kept turning.
        assert silent.recv(1) == b""
        assert max(gaps) < 0.5, max(gaps)
        assert not got
        # A real hand-over still arrives whole.
        a, b = socket.socketpair()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(name)
        payload = rv._LEN.pack(5) + b"hello"
        socket.send_fds(s, [payload[:3]], [a.fileno()])
        await asyncio.sleep(0.05)
        s.sendall(payload[3:])
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        assert len(got) == 1 and got[0][1] == b"hello"
        os.close(got[0][0])
        for x in (a, b, s, silent):
            x.close()
        r.close()

    asyncio.run(main())


def test_the_sending_side_never_blocks_the_loop() -> None:
    """A hand-over bigger than the Unix socket's buffer goes out from a task
    (the receiver, here in the same loop, gets all of it), and a listener
    whose queue is full refuses at once, leaving the socket as it was."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[int, bytes]] = []
        name = f"\0ipchub-py-test-{os.getpid()}-{time.monotonic_ns()}"
        r = rv.Rendezvous(name, lambda fd, data: got.append((fd, data)))
        srv = socket.create_server(("127.0.0.1", 0))
        peer = socket.create_connection(srv.getsockname())
        conn, _ = srv.accept()
        conn.setblocking(False)
        transport, _p = await loop.connect_accepted_socket(asyncio.Protocol, conn)
        big = os.urandom(900 * 1024)  # several times the Unix socket's buffer
        started = time.monotonic()
        assert rv.hand_over(name, transport, big)
        assert time.monotonic() - started < 0.5  # nothing waited for the receiver
        assert transport.is_closing()
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        assert len(got) == 1 and got[0][1] == big
        # The handed-over socket is the same TCP connection.
        handed = socket.socket(fileno=got[0][0])
        peer.sendall(b"ping")
        handed.settimeout(2)
        assert handed.recv(4) == b"ping"
        handed.close()
        r.close()

        # A listener that never accepts, its queue full: refused at once.
        full = f"\0ipchub-py-test-full-{os.getpid()}-{time.monotonic_ns()}"
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(full)
        lst.listen(0)
        queued = []
        for _ in range(64):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(full)
            except BlockingIOError:
                c.close()
                break
            queued.append(c)
        else:
            raise AssertionError("the listener's queue never filled")
        peer2 = socket.create_connection(srv.getsockname())
        c2, _ = srv.accept()
        c2.setblocking(False)
        t2, _p2 = await loop.connect_accepted_socket(asyncio.Protocol, c2)
        started = time.monotonic()
        assert not rv.hand_over(full, t2, b"x" * 1000)
        assert time.monotonic() - started < 0.5
        assert not t2.is_closing()
        for x in (*queued, lst, peer, peer2, srv):
            x.close()
        t2.close()

    asyncio.run(main())
