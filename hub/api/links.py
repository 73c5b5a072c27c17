"""The front's IPC handlers: what the supervisor and the shards ask of it."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from ..child import shard_socket_path
from ..config import Config
from ..errors import HubError, IpcError
from ..ipc import messages as M
from ..ipc.channel import IpcChannel, connect_unix
from ..procstats import process_extra
from .context import FrontContext
from .metrics import front_report

log = logging.getLogger("hub.api.links")

SHARD_RETRY_MIN = 0.05
SHARD_RETRY_MAX = 0.5


class SupervisorLink:
    def __init__(self, front: FrontContext, stop: asyncio.Event) -> None:
        self.front = front
        self.stop = stop

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        if method == "ping":
            return "pong"
        if method == "store_changed":
            self.front.apply_store(args)
            return True
        if method == "consumers":
            return self.front.local_consumers()
        if method == "kick":
            return self.front.kick_local(int(args["cid"]))
        if method == M.METRICS:
            return front_report(self.front)
        if method == M.DRAIN:
            self.front.drain()
            return True
        if method == M.RELOAD:
            self.front.reload(Config.from_dict(args["config"]))
            return True
        if method == "stats":
            out = self.front.counters.as_stats()
            out["streams"]["consumers"] = (len(self.front.views.all_consumers())
                                           + len(self.front.hls_viewers.active()))
            if args.get("extra"):
                out["extra"] = process_extra(self.front.args.name)
            return out
        raise HubError(f"unknown method {method!r}")

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        pass

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        os.close(fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        # Without the supervisor there is no tree to belong to.
        log.warning("supervisor link closed; exiting")
        self.front.supervisor = None
        self.stop.set()


class ShardLink:
    def __init__(self, front: FrontContext, index: int) -> None:
        self.front = front
        self.index = index
        #: Set when the link closes (keep_shard_link then connects again).
        self.closed = asyncio.Event()

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        if method == "ping":
            return "pong"
        if method == "webrtc_session":  # another front's DELETE/PATCH of a WHEP session, via the shard
            return self.front.webrtc.session_op(args)
        raise HubError(f"unknown method {method!r}")

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        if method == "wake":
            self.front.views.on_wake(args["s"])
        elif method == "stream_ended":
            self.front.views.on_stream_ended(int(args["stream_id"]))
        elif method in ("hls_part", "hls_gone"):
            self.front.hls_live.on_notice(method, args)

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        os.close(fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        # The shard is gone, and with it every stream it owned.
        shards = self.front.shards
        for view in list(self.front.views.by_id.values()):
            if shards.index_of(view.desc.path) == self.index:
                view.close()
        shards.detach(self.index, ch)
        self.closed.set()


async def keep_shard_link(front: FrontContext, index: int, stop: asyncio.Event) -> None:
    """Connect to shard `index`, and again whenever its link drops.

    While the link is up this waits on its closing, never on a clock; only
    a shard that is down (being restarted) is tried again, backing off from
    SHARD_RETRY_MIN to SHARD_RETRY_MAX."""
    path = shard_socket_path(front.args.run_dir, index)
    shards = front.shards
    delay = SHARD_RETRY_MIN
    while not stop.is_set():
        link = ShardLink(front, index)
        try:
            ch = await connect_unix(path, link)
        except (OSError, IpcError):
            await asyncio.sleep(delay)
            delay = min(SHARD_RETRY_MAX, delay * 2)
            continue
        shards.attach(index, ch)
        delay = SHARD_RETRY_MIN
        await link.closed.wait()
