"""FrontContext: everything a front's protocols need, in one object.

The protocols (REST, media paths, RTSP transports) import this module; this
module imports only the leaves it composes (views, HLS viewers, the RTSP
challenger, RTP ports, the shard links), never a protocol.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..auth.tokens import TokenService
from ..child import ChildArgs
from ..config import Config
from ..errors import Draining, LimitReached, ServiceUnavailable
from ..ipc import messages as M
from ..logs import level_number
from ..ipc.channel import IpcChannel
from ..ipc.methods import Ask, R
from ..store.routes import RouteTable
from ..store.sessions import RotationLimit
from ..store.users import User, UserTable, relay_user
from ..udp_ports import PortPairPool
from .play.hls_live import HlsLive
from .play.hls_viewers import HlsViewers
from .play.rtp import RtpPorts
from .play.views import StreamViews
from .rtsp.challenge import RtspChallenger
from .shards import ShardLinks
from .webrtc.service import ID_KEY_LABEL, WebRtcFront

log = logging.getLogger("hub.api.context")


#: How long a store write may queue in the supervisor before it is dropped
#: (503, nothing changed), and how much longer the front waits for the answer.
STORE_WRITE_DEADLINE = 20.0
STORE_WRITE_MARGIN = 5.0

@dataclass
class FrontCounters:
    rtsp_total: int = 0
    rtsp_active: int = 0
    flv_total: int = 0
    flv_active: int = 0
    wsp_total: int = 0
    wsp_active: int = 0
    rtmp_total: int = 0  # RTMP connections accepted (publishers count here until handed over)
    rtmp_active: int = 0
    login_failures: int = 0  # RTSP credentials that did not pass
    api_requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (route, status)
    webrtc_total: int = 0  # WHEP players (WHIP publishers are counted by their shard)
    webrtc_active: int = 0

    def as_stats(self) -> dict[str, Any]:
        return {"rtsp": {"total": self.rtsp_total, "active": self.rtsp_active},
                "flv": {"total": self.flv_total, "active": self.flv_active},
                "wsp": {"total": self.wsp_total, "active": self.wsp_active},
                "rtmp": {"total": self.rtmp_total, "active": self.rtmp_active},
                "webrtc": {"total": self.webrtc_total, "active": self.webrtc_active},
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
    #: Refreshes this front lets through per user (the supervisor's limit is
    #: the one that counts; this one keeps the refused from reaching it).
    rotations: RotationLimit = field(default_factory=RotationLimit)
    relay_user: User | None = None
    #: SIGTERM reached the tree: no new sessions, the listening socket is closed.
    draining: bool = False
    #: Listening on the shared port (uvicorn started), until a drain closes it.
    listening: bool = False
    #: Closes the listening socket (set by hub.api.process once uvicorn serves).
    stop_listening: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        c = self.config
        self.shards = ShardLinks(c.shard_count)
        self.views = StreamViews(self.shards, c)
        self.hls_viewers = HlsViewers()
        self.hls_live = HlsLive(self.shards)
        self.rtsp_auth = RtspChallenger(c.auth_scheme)
        # Shards take the first slices of the RTP port range, fronts the rest.
        self.rtp_ports = RtpPorts(
            PortPairPool(c.rtp_port_min, c.rtp_port_max, slice_index=c.shard_count + self.args.index,
                         slices=c.shard_count + c.front_count),
            PortPairPool(c.multicast_port_min, c.multicast_port_max, slice_index=self.args.index,
                         slices=c.front_count),
            c.multicast_group, c.multicast_ttl)
        self.webrtc = WebRtcFront(c, self.args.index, self.views, self.counters)

    @property
    def config(self) -> Config:
        return self.args.config

    async def supervisor_request(self, msg: Ask[R], timeout: float = 5.0) -> R:
        if self.supervisor is None:
            raise ServiceUnavailable("supervisor link is down")
        return await self.supervisor.call(msg, timeout=timeout)

    async def store_write(self, msg: Ask[R]) -> R:
        """A change to the users/routes/recording rules: the supervisor
        applies writes one at a time, so a burst queues. It drops a write
        still queued at the deadline (nothing changed), and answers before
        this side stops waiting: a 503 here always means "not changed"."""
        deadline = time.monotonic() + STORE_WRITE_DEADLINE
        method, args = msg
        return await self.supervisor_request((method, {**args, "deadline": deadline}),
                                             timeout=STORE_WRITE_DEADLINE + STORE_WRITE_MARGIN)

    async def shard_request(self, path: str, msg: Ask[R], timeout: float = 5.0) -> R:
        return await self.shards.request(path, msg, timeout)

    # -- admission (hub.supervisor.admission decides for the whole tree) -------------
    async def admit_player(self, path: str, remote: str, viewer: str | None = None) -> PlayerTicket:
        """A grant for one player of `path`, or LimitReached / Draining.

        With a player limit set the supervisor is asked (one round trip per
        session start); without one it is only told, so its counts stay
        right for a reload that sets a limit. `viewer` names an HLS viewer
        (hub.api.play.hls_viewers), one player whichever fronts it asks."""
        if self.draining:
            raise Draining("draining: not taking new players")
        ticket = PlayerTicket(self, path, host_of(remote), viewer)
        log.debug("%s: player %s joining", path, remote)
        args = ticket.args()
        lim = self.config.limits
        if not (lim.players_per_stream or lim.players or lim.connections_per_ip):
            if self.supervisor is not None:
                self.supervisor.tell(M.ADMITTED(args))
            return ticket
        try:
            await self.supervisor_request(M.ADMIT(args), timeout=2.0)
        except (LimitReached, Draining):
            raise  # refused: nothing was counted
        except BaseException:
            ticket.release()  # the grant may have been made (a timeout, the player left)
            raise
        return ticket

    async def admit_publisher(self, path: str, remote: str) -> None:
        """Before a publisher's connection goes to its shard: LimitReached / Draining.

        The shard holds the grant and releases it when the session ends."""
        if self.draining:
            raise Draining("draining: not taking new publishers")
        args = self._publisher_grant(path, remote)
        try:
            await self.supervisor_request(M.ADMIT(args), timeout=2.0)
        except (LimitReached, Draining):
            raise
        except BaseException:
            self.release_publisher(path, remote)
            raise

    def release_publisher(self, path: str, remote: str) -> None:
        """The hand-off of an admitted publisher failed: give its grant back."""
        if self.supervisor is not None:
            self.supervisor.tell(M.RELEASE(self._publisher_grant(path, remote)))

    def _publisher_grant(self, path: str, remote: str) -> M.AdmissionArgs:
        return {"kind": "publisher", "path": path, "ip": host_of(remote),
                "holder": f"shard-{self.shards.index_of(path)}"}

    # -- drain and reload ------------------------------------------------------------
    def drain(self) -> None:
        """Stop taking connections: new ones go to another node."""
        self.draining = True
        self.hls_viewers.release_grants()
        if self.stop_listening is not None:
            self.stop_listening()
        self.listening = False

    def reload(self, config: Config) -> None:
        """The reloadable keys changed: swap the Config where it is read."""
        self.args = dataclasses.replace(self.args, config=config)
        self.views.config = config
        logging.getLogger().setLevel(level_number(config.log.level))

    def apply_store(self, msg: M.StoreArgs) -> None:
        """The supervisor's snapshot or broadcast change: new read-only copies."""
        if "relay_user" in msg:  # a cluster's: other nodes pull any path as this user
            self.relay_user = relay_user(msg["relay_user"])
        if "users" in msg:
            self.users = UserTable.from_wire(msg["users"])
            if self.relay_user is not None:
                self.users.add_internal(self.relay_user)
        if "routes" in msg:
            self.routes = RouteTable.from_wire(msg["routes"])
        if "key" in msg:
            self.tokens = TokenService(bytes(msg["key"]))
            self.webrtc.id_key = self.tokens.derive(ID_KEY_LABEL)

    def local_consumers(self, paths: set[str] | None = None,
                        detail: bool = True) -> dict[str, list[dict[str, Any]]]:
        """This front's players by stream path: of `paths` only if given; each
        its `info()`, or only its `{"id"}` without `detail` (to count them)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for view in self.views.by_id.values():
            if paths is None or view.desc.path in paths:
                out.setdefault(view.desc.path, []).extend(
                    c.info() if detail else {"id": c.cid} for c in view.consumers())
        for v in self.hls_viewers.active():
            if paths is None or v.path in paths:
                out.setdefault(v.path, []).append(v.info() if detail else {"id": v.cid})
        return {path: items for path, items in out.items() if items}

    def kick_local(self, cid: int) -> bool:
        for _view, c in self.views.all_consumers():
            if c.cid == cid:
                c.close()
                return True
        return self.hls_viewers.kick(cid)


def host_of(remote: str) -> str:
    """`host` of `host:port` or `[v6]:port`."""
    host = remote.rpartition(":")[0] if remote.count(":") == 1 or remote.startswith("[") else remote
    return host.strip("[]")


class PlayerTicket:
    """One admitted player; `release` (once) tells the supervisor it left."""

    __slots__ = ("front", "path", "ip", "viewer", "released")

    def __init__(self, front: FrontContext, path: str, ip: str, viewer: str | None = None) -> None:
        self.front = front
        self.path = path
        self.ip = ip
        self.viewer = viewer
        self.released = False

    def args(self) -> M.AdmissionArgs:
        out: M.AdmissionArgs = {"kind": "player", "path": self.path, "ip": self.ip}
        if self.viewer:
            out["viewer"] = self.viewer
        return out

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        sup = self.front.supervisor
        if sup is not None:
            sup.tell(M.RELEASE(self.args()))
