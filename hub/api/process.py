"""The front process: serves every connection on the shared port.

uvicorn (uvloop + httptools) runs on a listening socket this process binds
itself with SO_REUSEPORT, so the kernel spreads connections over the fronts.
The front keeps an IPC link to the supervisor (heartbeats, stats, stores)
and one to each shard (streams, wake-ups, socket hand-offs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from ..child import ChildArgs, shard_socket_path
from ..config import Config
from ..errors import HubError, IpcError, ServiceUnavailable
from ..ipc.channel import IpcChannel, connect_unix
from ..placement import shard_of
from ..procstats import process_extra
from .app import build_app
from ..auth.tokens import TokenService
from ..store.routes import RouteTable
from ..store.users import UserTable
from ..udp_ports import PortPairPool
from .access import RtspChallenger
from .hls_viewers import HlsViewers
from .consumer import set_cid_suffix
from .rtp_out import MulticastOut
from .sniff import SniffProtocol
from .views import StreamViews

log = logging.getLogger("hub.api.front")

SHARD_RETRY_MIN = 0.05
SHARD_RETRY_MAX = 1.0


@dataclass
class FrontCounters:
    rtsp_total: int = 0
    rtsp_active: int = 0
    flv_total: int = 0
    flv_active: int = 0
    wsp_total: int = 0
    wsp_active: int = 0

    def as_stats(self) -> dict[str, Any]:
        return {"rtsp": {"total": self.rtsp_total, "active": self.rtsp_active},
                "flv": {"total": self.flv_total, "active": self.flv_active},
                "wsp": {"total": self.wsp_total, "active": self.wsp_active},
                "streams": {"sources": 0, "consumers": 0}}


@dataclass
class FrontContext:
    """Everything a front's protocols need, reachable from the Starlette app."""

    args: ChildArgs
    counters: FrontCounters = field(default_factory=FrontCounters)
    supervisor: IpcChannel | None = None
    shards: list[IpcChannel | None] = field(default_factory=list)
    shard_ready: list[asyncio.Event] = field(default_factory=list)
    views: StreamViews = field(init=False)
    users: UserTable | None = None
    routes: RouteTable | None = None
    tokens: TokenService | None = None

    def __post_init__(self) -> None:
        self.views = StreamViews(self)
        self.hls_viewers = HlsViewers()
        self.rtsp_auth = RtspChallenger(self.config.auth_scheme)
        c = self.config
        # Shards take the first slices of the RTP port range, fronts the rest.
        self.udp_ports = PortPairPool(c.rtp_port_min, c.rtp_port_max,
                                      slice_index=c.shard_count + self.args.index,
                                      slices=c.shard_count + c.front_count)
        self.multicast_ports = PortPairPool(c.multicast_port_min, c.multicast_port_max,
                                            slice_index=self.args.index, slices=c.front_count)
        self._mc_next = 0

    def multicast_out(self, tracks: int) -> MulticastOut:
        """A group port block for one stream's multicast players (2 ports a track)."""
        c = self.config
        ports = self.multicast_ports.ports
        base = ports[self._mc_next % len(ports)]
        self._mc_next += tracks
        return MulticastOut(c.multicast_group, base, c.multicast_ttl, tracks)

    @property
    def config(self) -> Config:
        return self.args.config

    async def supervisor_request(self, method: str, args: dict[str, Any], timeout: float = 5.0) -> Any:
        if self.supervisor is None:
            raise ServiceUnavailable("supervisor link is down")
        return await self.supervisor.request(method, args, timeout=timeout)

    async def shard_request(self, path: str, method: str, args: dict[str, Any], timeout: float = 5.0) -> Any:
        sid = shard_of(path, len(self.shards))
        ch = self.shards[sid]
        if ch is None:
            # A shard being restarted: wait briefly for its link to return.
            try:
                await asyncio.wait_for(self.shard_ready[sid].wait(), 2.0)
            except asyncio.TimeoutError:
                raise ServiceUnavailable(f"shard {sid} is not reachable") from None
            ch = self.shards[sid]
            if ch is None:
                raise ServiceUnavailable(f"shard {sid} is not reachable")
        return await ch.request(method, args, timeout=timeout)

    def apply_store(self, msg: dict[str, Any]) -> None:
        """The supervisor's snapshot or broadcast change: new read-only copies."""
        if "users" in msg:
            self.users = UserTable.from_wire(msg["users"])
        if "routes" in msg:
            self.routes = RouteTable.from_wire(msg["routes"])
        if "key" in msg:
            self.tokens = TokenService(bytes(msg["key"]))

    def local_consumers(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for view, c in self.views.all_consumers():
            out.setdefault(view.desc.path, []).append(c.info())
        for v in self.hls_viewers.active():
            out.setdefault(v.path, []).append(v.info())
        return out

    def kick_local(self, cid: int) -> bool:
        for _view, c in self.views.all_consumers():
            if c.cid == cid:
                c.close()
                return True
        return self.hls_viewers.kick(cid)

    def notify_shard(self, path: str, method: str, args: dict[str, Any]) -> None:
        ch = self.shards[shard_of(path, len(self.shards))] if self.shards else None
        if ch is not None:
            ch.notify(method, args)


class _SupervisorLink:
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


class _ShardLink:
    def __init__(self, front: FrontContext, index: int) -> None:
        self.front = front
        self.index = index

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        if method == "ping":
            return "pong"
        raise HubError(f"unknown method {method!r}")

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        if method == "wake":
            self.front.views.on_wake(args["s"])
        elif method == "stream_ended":
            self.front.views.on_stream_ended(int(args["stream_id"]))

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        os.close(fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        # The shard is gone, and with it every stream it owned.
        for view in list(self.front.views.by_id.values()):
            if shard_of(view.desc.path, len(self.front.shards)) == self.index:
                view.close()
        if self.front.shards[self.index] is ch:
            self.front.shards[self.index] = None
            self.front.shard_ready[self.index].clear()


async def _keep_shard_link(front: FrontContext, index: int, stop: asyncio.Event) -> None:
    """Connect to shard `index` and reconnect whenever its link drops."""
    path = shard_socket_path(front.args.run_dir, index)
    delay = SHARD_RETRY_MIN
    while not stop.is_set():
        if front.shards[index] is None:
            try:
                ch = await connect_unix(path, _ShardLink(front, index))
            except (OSError, IpcError):
                await asyncio.sleep(delay)
                delay = min(SHARD_RETRY_MAX, delay * 2)
                continue
            front.shards[index] = ch
            front.shard_ready[index].set()
            delay = SHARD_RETRY_MIN
        await asyncio.sleep(0.05 if front.shards[index] is None else 0.2)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(app, http=SniffProtocol, ws="none", lifespan="off", loop="none",
                          log_config=None, access_log=False, proxy_headers=False,
                          server_header=False, date_header=True, timeout_graceful_shutdown=1)


async def selftest(config: uvicorn.Config) -> None:
    """Serve one real request through the sniffing hook on a socketpair.

    uvicorn's `http=` hook and HttpToolsProtocol's constructor are not a
    public API; if an upgrade breaks them, the front must fail at start,
    loudly, not serve a port that answers nothing.
    """
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    try:
        state = ServerState()
        await loop.connect_accepted_socket(
            lambda: SniffProtocol(config=config, server_state=state, app_state={}, _loop=loop), a)
        b.setblocking(False)
        await loop.sock_sendall(b, b"GET /api/crossdomain.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = bytearray()
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(b, 65536):
                data += chunk
        if not data.startswith(b"HTTP/1.1 200") or b"cross-domain-policy" not in data:
            raise RuntimeError(f"uvicorn hook self-test failed: {bytes(data[:200])!r}")
    finally:
        a.close()
        b.close()


async def run_front(args: ChildArgs) -> None:
    stop = asyncio.Event()
    set_cid_suffix(args.index)
    front = FrontContext(args)
    n = args.config.shard_count
    front.shards = [None] * n
    front.shard_ready = [asyncio.Event() for _ in range(n)]
    front.supervisor = IpcChannel.from_fd(args.ipc_fd, _SupervisorLink(front, stop))
    links = [asyncio.create_task(_keep_shard_link(front, i, stop), name=f"shard-link-{i}") for i in range(n)]

    front.apply_store(await front.supervisor_request("store_snapshot", {}, timeout=10.0))
    app = build_app(front)
    config = uvicorn_config(app)
    config.load()
    await selftest(config)
    sock = listening_socket(args.config.host, args.config.port)
    server = uvicorn.Server(config)

    async def stop_on_link_loss() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_on_link_loss())
    try:
        await server.serve(sockets=[sock])
    finally:
        stop.set()
        for t in (*links, watcher):
            t.cancel()
        await asyncio.gather(*links, watcher, return_exceptions=True)
        for ch in front.shards:
            if ch is not None:
                ch.close()
        if front.supervisor is not None:
            front.supervisor.close()
        sock.close()
