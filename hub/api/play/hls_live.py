"""A front's view of the LL-HLS streams its players ask for, and the requests it holds.

Blocking playlist reloads (``_HLS_msn``/``_HLS_part``) and requests for the
part the preload hint names wait here, not in the shard and not by reading
files: the first LL request for a stream asks the owning shard
(``hls_open``), which answers with the playlist's `LlState` and subscribes
this front to the stream's ``hls_part`` notices; every notice updates the
state and wakes the waiting requests of that stream, which re-decide. While
requests come, the front reminds the shard every `TOUCH_EVERY` seconds
(``hls_touch``); a stream with no notice for `STALE` seconds is asked
again. Waiting is bounded per stream and per client address, and by
`LlState.timeout` (then 503).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from ...client_key import client_key
from ...errors import NotFound, ServiceUnavailable
from ...ipc import messages as M
from ...media.hls import LlState
from ..shards import ShardLinks

#: Requests held per stream (all clients of this front) and per client address.
MAX_WAITING_PER_STREAM = 4096
MAX_WAITING_PER_CLIENT = 64
#: A stream with no notice for this long is asked again (a shard restarted, a stalled source).
STALE = 6.0
#: How often a stream with requests tells its shard it is still wanted.
TOUCH_EVERY = 5.0
#: A stream with no request for this long is forgotten (the shard drops us after 60 s too).
IDLE = 60.0
#: The first part of a stream just opened can take a GOP; the shard waits 15 s.
OPEN_TIMEOUT = 20.0


def state_from_wire(st: list[Any]) -> LlState:
    return LlState(int(st[0]), int(st[1]), int(st[2]), float(st[3]), int(st[4]), bool(st[5]))


class LiveHls:
    """One LL stream as this front knows it."""

    __slots__ = ("path", "folder", "state", "next_part", "updated", "touched", "used", "gone",
                 "waiting", "per_client", "_changed")

    def __init__(self, path: str, folder: Path, state: LlState, next_part: int) -> None:
        now = time.monotonic()
        self.path = path
        self.folder = folder
        self.state = state
        self.next_part = next_part
        self.updated = self.touched = self.used = now
        self.gone = False
        self.waiting = 0
        self.per_client: Counter[str] = Counter()
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def update(self, state: LlState, next_part: int) -> None:
        if next_part >= self.next_part:
            self.state, self.next_part = state, next_part
        self.updated = time.monotonic()
        self._wake()

    def end(self) -> None:
        self.gone = True
        self._wake()

    def _wake(self) -> None:
        old, self._changed = self._changed, asyncio.get_running_loop().create_future()
        old.set_result(None)

    async def wait(self, client: str, ready: Callable[[LiveHls], bool], timeout: float) -> None:
        """Until ``ready(self)``: NotFound if the stream's HLS ends first,
        ServiceUnavailable past ``timeout`` or past the bounds (nothing held then)."""
        if ready(self):
            return
        if self.gone:
            raise NotFound("404 page not found")
        client = client_key(client)  # an IPv6 client by its /64
        if self.waiting >= MAX_WAITING_PER_STREAM or self.per_client[client] >= MAX_WAITING_PER_CLIENT:
            raise ServiceUnavailable("too many HLS requests waiting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.waiting += 1
        self.per_client[client] += 1
        try:
            while not ready(self):
                if self.gone:
                    raise NotFound("404 page not found")
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ServiceUnavailable("HLS: not there in time")
                try:
                    await asyncio.wait_for(asyncio.shield(self._changed), remaining)
                except asyncio.TimeoutError:
                    raise ServiceUnavailable("HLS: not there in time") from None
        finally:
            self.waiting -= 1
            self.per_client[client] -= 1
            if not self.per_client[client]:
                del self.per_client[client]


class HlsLive:
    """Every LL stream this front serves, by canonical path."""

    def __init__(self, shards: ShardLinks) -> None:
        self.shards = shards
        self.streams: dict[str, LiveHls] = {}

    async def get(self, path: str) -> LiveHls:
        """The stream's entry, asking its shard when there is none or it went stale."""
        now = time.monotonic()
        live = self.streams.get(path)
        if live is not None and not live.gone and now - live.updated <= max(STALE, live.state.timeout):
            live.used = now
            if now - live.touched >= TOUCH_EVERY:
                live.touched = now
                self.shards.notify(path, M.HLS_TOUCH({"p": path}))
            return live
        reply = await self.shards.request(path, M.HLS_OPEN({"path": path, "variant": "ll"}),
                                          timeout=OPEN_TIMEOUT)
        state, next_part = state_from_wire(reply["st"]), int(reply["n"])
        live = self.streams.get(path)
        if live is None or live.gone:
            self._expire(now)
            if live is not None:
                live.end()  # anyone still waiting on the old one asks again
            live = self.streams[path] = LiveHls(path, Path(reply["folder"]), state, next_part)
        else:
            live.update(state, next_part)
        live.used = now
        return live

    def on_part(self, args: M.HlsPartArgs) -> None:
        """A shard's ``hls_part``: a part is out."""
        live = self.streams.get(str(args.get("p")))
        if live is not None:
            live.update(state_from_wire(args["st"]), int(args["n"]))

    def on_gone(self, args: M.HlsPathArgs) -> None:
        """A shard's ``hls_gone``: the stream's fMP4 segmenter stopped."""
        live = self.streams.get(str(args.get("p")))
        if live is not None:
            del self.streams[live.path]
            live.end()

    def _expire(self, now: float) -> None:
        for path in [p for p, live in self.streams.items() if now - live.used > IDLE and not live.waiting]:
            self.streams.pop(path).end()
