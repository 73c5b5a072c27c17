"""FrontContext: everything a front's protocols need, in one object.

The protocols (REST, media paths, RTSP transports) import this module; this
module imports only the leaves it composes (views, HLS viewers, the RTSP
challenger, RTP ports, the shard links), never a protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..auth.tokens import TokenService
from ..child import ChildArgs
from ..config import Config
from ..errors import ServiceUnavailable
from ..ipc.channel import IpcChannel
from ..store.routes import RouteTable
from ..store.users import UserTable
from ..udp_ports import PortPairPool
from .play.hls_viewers import HlsViewers
from .play.rtp import RtpPorts
from .play.views import StreamViews
from .rtsp.challenge import RtspChallenger
from .shards import ShardLinks


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
    """Reachable from the Starlette app as `app.state.front`."""

    args: ChildArgs
    counters: FrontCounters = field(default_factory=FrontCounters)
    supervisor: IpcChannel | None = None
    shards: ShardLinks = field(init=False)
    views: StreamViews = field(init=False)
    users: UserTable | None = None
    routes: RouteTable | None = None
    tokens: TokenService | None = None

    def __post_init__(self) -> None:
        c = self.config
        self.shards = ShardLinks(c.shard_count)
        self.views = StreamViews(self.shards, c)
        self.hls_viewers = HlsViewers()
        self.rtsp_auth = RtspChallenger(c.auth_scheme)
        # Shards take the first slices of the RTP port range, fronts the rest.
        self.rtp_ports = RtpPorts(
            PortPairPool(c.rtp_port_min, c.rtp_port_max, slice_index=c.shard_count + self.args.index,
                         slices=c.shard_count + c.front_count),
            PortPairPool(c.multicast_port_min, c.multicast_port_max, slice_index=self.args.index,
                         slices=c.front_count),
            c.multicast_group, c.multicast_ttl)

    @property
    def config(self) -> Config:
        return self.args.config

    async def supervisor_request(self, method: str, args: dict[str, Any], timeout: float = 5.0) -> Any:
        if self.supervisor is None:
            raise ServiceUnavailable("supervisor link is down")
        return await self.supervisor.request(method, args, timeout=timeout)

    async def shard_request(self, path: str, method: str, args: dict[str, Any], timeout: float = 5.0) -> Any:
        return await self.shards.request(path, method, args, timeout)

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
