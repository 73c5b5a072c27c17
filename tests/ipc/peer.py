"""Child process for the IPC tests: a small server on an inherited fd or a path.

Run as a script: `python peer.py --loop asyncio|uvloop (--fd N | --path P)`.
Requests: add, echo, sleep, fail (raise a hub error by name), boom (a bug),
notices (send n notices back), garbage (write a malformed frame raw), exit.
Notices: "echo" comes back as "echoed". Fds: "fd_write" writes args["text"]
into the fd; "handoff_rtsp" adopts a TCP socket and echoes all it gets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from hub import errors  # noqa: E402
from hub.ipc.channel import IpcChannel, serve_unix  # noqa: E402
from hub.ipc.handoff import adopt_socket, already_read_of  # noqa: E402


class EchoProtocol(asyncio.Protocol):
    """Writes back every byte it receives, replayed ones first."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class PeerHandler:
    def __init__(self, stop: asyncio.Event, raw_fd: int) -> None:
        self.stop = stop
        self.raw_fd = raw_fd
        self.tasks: set[asyncio.Task[None]] = set()

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        if method == "add":
            return args["a"] + args["b"]
        if method == "echo":
            return args
        if method == "sleep":
            await asyncio.sleep(args["s"])
            return args["s"]
        if method == "fail":
            raise getattr(errors, args["type"])(args["msg"])
        if method == "boom":
            raise ValueError("boom")
        if method == "notices":
            for i in range(args["n"]):
                ch.notify("tick", {"i": i})
            return args["n"]
        if method == "garbage":
            # A length prefix then a byte msgpack never uses (0xc1).
            os.write(self.raw_fd, b"\x00\x00\x00\x01\xc1")
            await asyncio.sleep(10)
            return None
        if method == "exit":
            os._exit(3)
        raise errors.NotFound(f"no method {method}")

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        if method == "echo":
            ch.notify("echoed", args)

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        if method == "fd_write":
            os.write(fd, args["text"])
            os.close(fd)
        elif method == "handoff_rtsp":
            task = asyncio.get_running_loop().create_task(self.adopt(ch, fd, args))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            os.close(fd)

    async def adopt(self, ch: IpcChannel, fd: int, args: dict[str, Any]) -> None:
        replay = already_read_of(args)
        await adopt_socket(asyncio.get_running_loop(), fd, EchoProtocol, replay)
        ch.notify("adopted", {"pid": os.getpid(), "replayed": len(replay)})

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        self.stop.set()


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    if args.fd is not None:
        handler = PeerHandler(stop, os.dup(args.fd))
        ch = IpcChannel.from_fd(args.fd, handler, name="peer")
        await stop.wait()
        await ch.wait_closed()
    else:
        server = await serve_unix(args.path, lambda: PeerHandler(stop, -1))
        await stop.wait()
        server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--fd", type=int)
    p.add_argument("--path")
    a = p.parse_args()
    if a.loop == "uvloop":
        import uvloop

        uvloop.run(main(a))
    else:
        asyncio.run(main(a))
