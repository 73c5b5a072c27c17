"""The front's IPC: its one dispatch table (FRONT) and its links to the supervisor and the shards."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..child import shard_socket_path
from ..config import Config
from ..errors import IpcError
from ..ipc import messages as M
from ..ipc.channel import IpcChannel, connect_unix
from ..ipc.dispatch import Dispatch
from ..procstats import process_extra
from .context import FrontContext
from .metrics import front_report

log = logging.getLogger("hub.api.links")

SHARD_RETRY_MIN = 0.05
SHARD_RETRY_MAX = 0.5


# -- the front's one dispatch table: what the supervisor and the shards ask and tell it --
async def _ping(front: FrontContext, ch: IpcChannel, a: M.NoArgs) -> str:
    return "pong"


async def _store_changed(front: FrontContext, ch: IpcChannel, a: M.StoreArgs) -> bool:
    front.apply_store(a)
    return True


async def _consumers(front: FrontContext, ch: IpcChannel, a: M.ConsumersArgs) -> M.Consumers:
    paths = a.get("paths")
    return front.local_consumers(None if paths is None else set(map(str, paths)), bool(a.get("detail", True)))


async def _kick(front: FrontContext, ch: IpcChannel, a: M.KickArgs) -> bool:
    return front.kick_local(int(a["cid"]))


async def _metrics(front: FrontContext, ch: IpcChannel, a: M.NoArgs) -> M.ChildReport:
    return front_report(front)


async def _drain(front: FrontContext, ch: IpcChannel, a: M.NoArgs) -> bool:
    front.drain()
    return True


async def _reload(front: FrontContext, ch: IpcChannel, a: M.ReloadArgs) -> bool:
    front.reload(Config.from_dict(a["config"]))
    return True


async def _stats(front: FrontContext, ch: IpcChannel, a: M.StatsArgs) -> dict[str, Any]:
    out = front.counters.as_stats()
    out["streams"]["consumers"] = len(front.views.all_consumers()) + len(front.hls_viewers.active())
    if a.get("extra"):
        out["extra"] = process_extra(front.args.name)
    return out


async def _webrtc_session(front: FrontContext, ch: IpcChannel, a: M.SessionOpArgs) -> str | None:
    """Another front's DELETE/PATCH of a WHEP session, via the shard."""
    return front.webrtc.session_op(a)


def _wake(front: FrontContext, ch: IpcChannel, a: M.WakeArgs) -> None:
    front.views.on_wake(a["s"])


def _stream_ended(front: FrontContext, ch: IpcChannel, a: M.StreamIdArgs) -> None:
    front.views.on_stream_ended(int(a["stream_id"]))


def _hls_part(front: FrontContext, ch: IpcChannel, a: M.HlsPartArgs) -> None:
    front.hls_live.on_part(a)


def _hls_gone(front: FrontContext, ch: IpcChannel, a: M.HlsPathArgs) -> None:
    front.hls_live.on_gone(a)


FRONT: Dispatch[FrontContext] = Dispatch("front")
FRONT.request(M.PING, _ping)
FRONT.request(M.STORE_CHANGED, _store_changed)
FRONT.request(M.CONSUMERS, _consumers)
FRONT.request(M.KICK, _kick)
FRONT.request(M.METRICS, _metrics)
FRONT.request(M.DRAIN, _drain)
FRONT.request(M.RELOAD, _reload)
FRONT.request(M.STATS, _stats)
FRONT.request(M.WEBRTC_SESSION, _webrtc_session)
FRONT.notice(M.WAKE, _wake)
FRONT.notice(M.STREAM_ENDED, _stream_ended)
FRONT.notice(M.HLS_PART, _hls_part)
FRONT.notice(M.HLS_GONE, _hls_gone)


class _FrontLink:
    """What both links of a front hand to FRONT."""

    front: FrontContext

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        return await FRONT.on_request(self.front, ch, method, args)

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        FRONT.on_notice(self.front, ch, method, args)

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        FRONT.on_fd(self.front, ch, method, args, fd)


class SupervisorLink(_FrontLink):
    def __init__(self, front: FrontContext, stop: asyncio.Event) -> None:
        self.front = front
        self.stop = stop

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        # Without the supervisor there is no tree to belong to.
        log.warning("supervisor link closed; exiting")
        self.front.supervisor = None
        self.stop.set()


class ShardLink(_FrontLink):
    def __init__(self, front: FrontContext, index: int) -> None:
        self.front = front
        self.index = index
        #: Set when the link closes (keep_shard_link then connects again).
        self.closed = asyncio.Event()

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
        ch.tell(M.FRONT_HELLO({"index": front.args.index}))
        delay = SHARD_RETRY_MIN
        await link.closed.wait()
