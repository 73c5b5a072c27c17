"""Control-plane throughput between two processes over one IPC link.

    .venv/bin/python bench/ipc.py [--loop uvloop|asyncio] [--seconds 2]

Prints request/response round trips per second (one at a time, then 64 in
flight) and one-way notices per second, by bare method name; then the same
sequential round trips and notices as the tree sends them: a declared method
(`IpcChannel.call` / `tell` of hub.ipc.messages' `PING` and `WAKE`) that the
child hands to a `Dispatch` table, as every process does. The child is a
second Python process on a socketpair, as the supervisor runs its shards and
fronts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hub.ipc import messages as M  # noqa: E402
from hub.ipc.channel import IpcChannel  # noqa: E402
from hub.ipc.dispatch import Dispatch  # noqa: E402


class Server:
    """Child side: answers "echo", counts notices, reports the count on request;
    declared methods go through its dispatch table (TABLE)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.notices = 0

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        if method == "count":
            return self.notices
        if method == "echo":
            return args
        return await TABLE.on_request(self, ch, method, args)

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        if method == "wake":
            TABLE.on_notice(self, ch, method, args)
        else:
            self.notices += 1

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        os.close(fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        self.stop.set()


async def _ping(server: Server, ch: IpcChannel, a: M.NoArgs) -> str:
    return "pong"


def _wake(server: Server, ch: IpcChannel, a: M.WakeArgs) -> None:
    server.notices += 1


#: The child's table, as a front's: a request and the front's hottest notice.
TABLE: Dispatch[Server] = Dispatch("front")
TABLE.request(M.PING, _ping)
TABLE.notice(M.WAKE, _wake)


class Client:
    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        return None

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        pass

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        os.close(fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        pass


async def child_main(fd: int) -> None:
    stop = asyncio.Event()
    ch = IpcChannel.from_fd(fd, Server(stop), name="bench-child")
    await stop.wait()
    await ch.wait_closed()


async def parent_main(loop_kind: str, seconds: float) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--loop", loop_kind,
                             "--child-fd", str(theirs.fileno())], pass_fds=(theirs.fileno(),))
    theirs.close()
    ch = IpcChannel(ours, Client(), name="bench")
    args = {"stream": 17, "path": "/live/cam1"}
    try:
        await ch.request("echo", args)  # warm-up: child is up

        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            for _ in range(100):
                await ch.request("echo", args)
            n += 100
        dt = time.perf_counter() - t0
        print(f"request/response, sequential : {n / dt:10.0f} round trips/s  ({dt / n * 1e6:.1f} us each)")

        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds

        async def worker() -> int:
            k = 0
            while time.perf_counter() < end:
                await ch.request("echo", args)
                k += 1
            return k
        n = sum(await asyncio.gather(*(worker() for _ in range(64))))
        dt = time.perf_counter() - t0
        print(f"request/response, 64 in flight: {n / dt:10.0f} round trips/s")

        sent = 0
        base = await ch.request("count", {})
        t0 = time.perf_counter()
        end = t0 + seconds
        wake = {"1": 1234, "2": 5678}
        while time.perf_counter() < end:
            for _ in range(1000):
                ch.notify("note", wake)
            sent += 1000
            # Let the flush run, and stay within the output cap.
            while ch.queued > 1 << 20:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)
        got = await ch.request("count", {}, timeout=30) - base  # ordered after all notices
        dt = time.perf_counter() - t0
        assert got == sent, (got, sent)
        print(f"notices (received by the child): {got / dt:10.0f} notices/s")

        # The same, declared and dispatched by a table as in the tree.
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            for _ in range(100):
                await ch.call(M.PING({}))
            n += 100
        dt = time.perf_counter() - t0
        print(f"typed call -> table, sequential: {n / dt:10.0f} round trips/s  ({dt / n * 1e6:.1f} us each)")

        sent = 0
        base = await ch.request("count", {})
        t0 = time.perf_counter()
        end = t0 + seconds
        streams: M.WakeArgs = {"s": {1: 1234, 2: 5678}}
        while time.perf_counter() < end:
            for _ in range(1000):
                ch.tell(M.WAKE(streams))
            sent += 1000
            while ch.queued > 1 << 20:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)
        got = await ch.request("count", {}, timeout=30) - base
        dt = time.perf_counter() - t0
        assert got == sent, (got, sent)
        print(f"typed tell -> table (wake)     : {got / dt:10.0f} notices/s")
    finally:
        ch.close()
        proc.wait(timeout=5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--child-fd", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child_fd is not None:
        coro = child_main(a.child_fd)
    else:
        print(f"hub.ipc over a socketpair, {a.loop}, {a.seconds:g} s per figure")
        coro = parent_main(a.loop, a.seconds)
    if a.loop == "uvloop":
        import uvloop
        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
