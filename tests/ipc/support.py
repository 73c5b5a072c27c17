"""Test helpers shared by the IPC tests."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.ipc.channel import IpcChannel


class Recorder:
    """An IpcHandler that records what arrives, for assertions."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, dict[str, Any]]] = []
        self.fds: list[tuple[str, dict[str, Any], int]] = []
        self.closed: list[BaseException | None] = []
        self.closed_event = asyncio.Event()
        self.notice_event = asyncio.Event()

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        if method == "add":
            return args["a"] + args["b"]
        if method == "sleep":
            await asyncio.sleep(args["s"])
            return args["s"]
        raise ValueError(method)

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        self.notices.append((method, args))
        self.notice_event.set()

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        self.fds.append((method, args, fd))

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        self.closed.append(exc)
        self.closed_event.set()

    async def wait_notices(self, n: int, timeout: float = 5.0) -> None:
        async def until() -> None:
            while len(self.notices) < n:
                self.notice_event.clear()
                await self.notice_event.wait()
        await asyncio.wait_for(until(), timeout)
