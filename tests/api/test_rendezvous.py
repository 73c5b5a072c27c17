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
