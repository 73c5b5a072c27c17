"""Adopting the sockets a front hands over: one task per hand-off, owned
(and cancelled at close) by the host that runs the protocol on them.

Shared by the RTSP publisher host (`hub.shard.publish`) and the RTMP one
(`hub.shard.rtmp_publish`): each says only how to make its protocol for a
path, peer and user."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Generic, TypeVar

from ..ipc.handoff import adopt_socket, already_read_of
from ..ipc.messages import HandoffArgs
from ..placement import canonical_path

log = logging.getLogger("hub.shard.handoff")

P = TypeVar("P", bound=asyncio.Protocol)


class HandoffHost(Generic[P]):
    """Runs a protocol `P` on each socket a front hands over."""

    #: Names the protocol in the log line of a failed hand-off.
    label = "publisher"

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def make(self, path: str, peer: str, user: str) -> P:
        """The protocol for one handed-over socket."""
        raise NotImplementedError

    def handoff(self, args: HandoffArgs, fd: int) -> asyncio.Task[P]:
        """A front's hand-off: adopt `fd` (ours from now on)."""
        path = canonical_path(str(args.get("path") or "/"))
        peer = str(args.get("peer") or "")
        user = str(args.get("user") or "")
        task = asyncio.get_running_loop().create_task(self.adopt(fd, path, peer, already_read_of(args), user))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s hand-off failed: %s", self.label, task.exception())

    async def adopt(self, fd: int, path: str, peer: str, already_read: bytes, user: str = "") -> P:
        """Run the protocol on a received socket, replaying `already_read`
        (every byte the front read from it) first."""
        loop = asyncio.get_running_loop()
        _, proto = await adopt_socket(loop, fd, lambda: self.make(path, peer, user), already_read)
        return proto  # type: ignore[return-value]  # made by self.make

    def cancel_handoffs(self) -> None:
        for task in list(self._tasks):
            task.cancel()
