"""The front's links to the shards: who owns a path, and asking it.

A leaf module: the views and the context both use it, it uses neither.
"""

from __future__ import annotations

import asyncio

from ..errors import ServiceUnavailable
from ..ipc.channel import IpcChannel
from ..ipc.methods import Ask, R, Tell
from ..placement import shard_of

#: How long a request waits for a shard being restarted to come back.
SHARD_RETURN_WAIT = 2.0


class ShardLinks:
    """One IPC channel per shard (None while a shard is being replaced)."""

    def __init__(self, count: int) -> None:
        self.channels: list[IpcChannel | None] = [None] * count
        self.ready = [asyncio.Event() for _ in range(count)]

    def __len__(self) -> int:
        return len(self.channels)

    def index_of(self, path: str) -> int:
        return shard_of(path, len(self.channels))

    def attach(self, index: int, ch: IpcChannel) -> None:
        self.channels[index] = ch
        self.ready[index].set()

    def detach(self, index: int, ch: IpcChannel) -> None:
        if self.channels[index] is ch:
            self.channels[index] = None
            self.ready[index].clear()

    async def channel_for(self, path: str) -> IpcChannel:
        """The owning shard's channel; waits briefly for a shard being restarted."""
        sid = self.index_of(path)
        ch = self.channels[sid]
        if ch is None:
            try:
                await asyncio.wait_for(self.ready[sid].wait(), SHARD_RETURN_WAIT)
            except asyncio.TimeoutError:
                raise ServiceUnavailable(f"shard {sid} is not reachable") from None
            ch = self.channels[sid]
            if ch is None:
                raise ServiceUnavailable(f"shard {sid} is not reachable")
        return ch

    async def request(self, path: str, msg: Ask[R], timeout: float = 5.0) -> R:
        ch = await self.channel_for(path)
        return await ch.call(msg, timeout=timeout)

    def notify(self, path: str, msg: Tell) -> None:
        ch = self.channels[self.index_of(path)] if self.channels else None
        if ch is not None:
            ch.tell(msg)

    def close(self) -> None:
        for ch in self.channels:
            if ch is not None:
                ch.close()
