"""The supervisor's IPC: what its children ask and tell it, one table.

`ChildLink` is the IpcHandler of one child's link; every frame goes to
`SUPERVISOR`, the supervisor's one dispatch table, whose handlers are
ChildLink's methods (they know the child that asked).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Forbidden, HubError, NotFound
from ..ipc import messages as M
from ..ipc.channel import IpcChannel
from ..ipc.dispatch import Dispatch
from ..placement import canonical_path
from .admission import Admission
from .lifecycle import Lifecycle
from .metrics import CONTENT_TYPE, TreeMetrics
from .stats import RuntimeStats
from .stores import Stores
from .tree import Child, ProcessTree

if TYPE_CHECKING:
    from ..cluster.node import ClusterNode

log = logging.getLogger("hub.supervisor")


class Supervisor(Protocol):
    """What the handlers need of hub.supervisor.main.Supervisor."""

    tree: ProcessTree
    admission: Admission
    metrics: TreeMetrics
    lifecycle: Lifecycle
    stats: RuntimeStats
    stores: Stores
    cluster: ClusterNode | None


class ChildLink:
    """IpcHandler for one child's link."""

    def __init__(self, sup: Supervisor, child: Child) -> None:
        self.sup = sup
        self.child = child

    # -- IpcHandler ---------------------------------------------------------------------
    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        return await SUPERVISOR.on_request(self, ch, method, args)

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        # After the requests read with it: a request runs as a task started
        # in this same pass, and a `release` must not overtake the `admit`
        # it answers (sent before it when a player left while being admitted).
        asyncio.get_running_loop().call_soon(self._notice, ch, method, args)

    def _notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        try:
            SUPERVISOR.on_notice(self, ch, method, args)
        except (HubError, KeyError, TypeError, ValueError) as e:
            log.warning("bad notice %s from %s: %r", method, self.child.name, e)

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        SUPERVISOR.on_fd(self, ch, method, args, fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        if exc is not None and not isinstance(exc, HubError):
            log.warning("link to %s closed: %r", self.child.name, exc)
        elif exc is not None:
            log.warning("link to %s closed: %s", self.child.name, exc)
            # A malformed frame closed the link: the child cannot be reached
            # any more, so replace it (its watcher restarts it).
            proc = self.child.proc
            if proc is not None and proc.returncode is None:
                proc.kill()

    # -- admission: a player's front holds its grant; a publisher's, the shard it is handed to
    def _holder(self, a: M.AdmissionArgs) -> str:
        return str(a.get("holder") or self.child.name)

    async def admit(self, ch: IpcChannel, a: M.AdmissionArgs) -> bool:
        self.sup.admission.admit(self._holder(a), str(a["kind"]), str(a["path"]), str(a.get("ip", "")),
                                 viewer=_viewer(a))
        return True

    def admitted(self, ch: IpcChannel, a: M.AdmissionArgs) -> None:
        """Counted without a check (no limit was set)."""
        self.sup.admission.admit(self._holder(a), str(a["kind"]), str(a["path"]), str(a.get("ip", "")),
                                 check=False, viewer=_viewer(a))

    def release(self, ch: IpcChannel, a: M.AdmissionArgs) -> None:
        self.sup.admission.release(self._holder(a), str(a["kind"]), str(a["path"]), str(a.get("ip", "")),
                                   viewer=_viewer(a))

    def serving(self, ch: IpcChannel, a: M.NoArgs) -> None:
        self.child.serving = True

    # -- operations ----------------------------------------------------------------------
    async def scrape(self, ch: IpcChannel, a: M.NoArgs) -> M.MetricsText:
        return {"body": await self.sup.metrics.scrape(), "type": CONTENT_TYPE}

    async def health(self, ch: IpcChannel, a: M.NoArgs) -> M.Health:
        return self.sup.lifecycle.health()

    async def ready(self, ch: IpcChannel, a: M.NoArgs) -> M.Readiness:
        return self.sup.lifecycle.readiness()

    async def runtime(self, ch: IpcChannel, a: M.RuntimeArgs) -> dict[str, Any]:
        return await self.sup.stats.runtime(extra=bool(a.get("extra")))

    async def server_info(self, ch: IpcChannel, a: M.NoArgs) -> dict[str, Any]:
        return self.sup.stats.server_info()

    # -- players across the fronts -------------------------------------------------------
    async def front_consumers(self, ch: IpcChannel, a: M.FrontConsumersArgs) -> list[M.Consumers]:
        skip = a.get("except")
        ask: M.ConsumersArgs = {"detail": bool(a.get("detail", True))}
        if "paths" in a:
            ask["paths"] = [str(p) for p in a["paths"]]
        replies = await self.sup.tree.request_all(M.CONSUMERS(ask), kinds=("front",))
        return [r for c, r in replies if c.index != skip]

    async def kick_consumer(self, ch: IpcChannel, a: M.KickConsumerArgs) -> bool:
        replies = await self.sup.tree.request_all(M.KICK({"cid": int(a["cid"])}), kinds=("front",))
        return any(r for _c, r in replies)

    # -- the stores ----------------------------------------------------------------------
    async def store_snapshot(self, ch: IpcChannel, a: M.NoArgs) -> M.StoreArgs:
        snap = self.sup.stores.snapshot()
        if self.sup.cluster is not None:
            snap.update(self.sup.cluster.snapshot())
        return snap

    async def login(self, ch: IpcChannel, a: M.LoginArgs) -> M.TokenPair:
        try:
            return await self.sup.stores.login(str(a.get("username", "")), str(a.get("password", "")))
        except Forbidden:
            self.sup.metrics.count("login_failures")
            raise

    async def refresh(self, ch: IpcChannel, a: M.RefreshArgs) -> M.TokenPair:
        return await self.sup.stores.refresh(a)

    async def record_rules(self, ch: IpcChannel, a: M.NoArgs) -> list[dict[str, Any]]:
        return self.sup.stores.record_rules()

    async def users_upsert(self, ch: IpcChannel, a: M.UsersUpsertArgs) -> str:
        return await self.sup.stores.users_upsert(a)

    async def users_delete(self, ch: IpcChannel, a: M.UsersDeleteArgs) -> bool:
        return await self.sup.stores.users_delete(a)

    async def routes_upsert(self, ch: IpcChannel, a: M.RoutesUpsertArgs) -> str:
        return await self.sup.stores.routes_upsert(a)

    async def routes_delete(self, ch: IpcChannel, a: M.PatternArgs) -> bool:
        return await self.sup.stores.routes_delete(a)

    async def record_upsert(self, ch: IpcChannel, a: M.RecordUpsertArgs) -> str:
        return await self.sup.stores.record_upsert(a)

    async def record_delete(self, ch: IpcChannel, a: M.PatternArgs) -> bool:
        return await self.sup.stores.record_delete(a)

    # -- a cluster (hub.cluster; NotFound without --cluster) --------------------------------
    def _cluster(self) -> ClusterNode:
        if self.sup.cluster is None:
            raise NotFound("not running as a cluster (--cluster)")
        return self.sup.cluster

    async def cluster_locate(self, ch: IpcChannel, a: M.LocateArgs) -> M.Located:
        return await self._cluster().locate(canonical_path(str(a["path"])), bool(a.get("routed")))

    async def cluster_streams(self, ch: IpcChannel, a: M.NoArgs) -> list[dict[str, Any]]:
        return await self._cluster().remote_streams()

    async def cluster_nodes(self, ch: IpcChannel, a: M.NoArgs) -> dict[str, Any]:
        return await self._cluster().nodes()

    async def cluster_delete(self, ch: IpcChannel, a: M.PathArgs) -> bool:
        return await self._cluster().forward_delete(canonical_path(str(a["path"])))

    async def cluster_kick(self, ch: IpcChannel, a: M.ClusterKickArgs) -> bool:
        return await self._cluster().forward_kick(str(a["node"]), int(a["cid"]))

    def cluster_stream(self, ch: IpcChannel, a: M.ClusterStreamArgs) -> None:
        """A shard's stream went live or ended: the stream directory's."""
        if self.sup.cluster is not None and self.child.kind == "shard":
            self.sup.cluster.stream_event(self.child.index, dict(a))


SUPERVISOR: Dispatch[ChildLink] = Dispatch("supervisor")
SUPERVISOR.request(M.ADMIT, ChildLink.admit)
SUPERVISOR.notice(M.ADMITTED, ChildLink.admitted)
SUPERVISOR.notice(M.RELEASE, ChildLink.release)
SUPERVISOR.notice(M.SERVING, ChildLink.serving)
SUPERVISOR.request(M.SCRAPE, ChildLink.scrape)
SUPERVISOR.request(M.HEALTH, ChildLink.health)
SUPERVISOR.request(M.READY, ChildLink.ready)
SUPERVISOR.request(M.RUNTIME, ChildLink.runtime)
SUPERVISOR.request(M.SERVER_INFO, ChildLink.server_info)
SUPERVISOR.request(M.FRONT_CONSUMERS, ChildLink.front_consumers)
SUPERVISOR.request(M.KICK_CONSUMER, ChildLink.kick_consumer)
SUPERVISOR.request(M.STORE_SNAPSHOT, ChildLink.store_snapshot)
SUPERVISOR.request(M.LOGIN, ChildLink.login)
SUPERVISOR.request(M.REFRESH, ChildLink.refresh)
SUPERVISOR.request(M.RECORD_RULES, ChildLink.record_rules)
SUPERVISOR.request(M.USERS_UPSERT, ChildLink.users_upsert)
SUPERVISOR.request(M.USERS_DELETE, ChildLink.users_delete)
SUPERVISOR.request(M.ROUTES_UPSERT, ChildLink.routes_upsert)
SUPERVISOR.request(M.ROUTES_DELETE, ChildLink.routes_delete)
SUPERVISOR.request(M.RECORD_UPSERT, ChildLink.record_upsert)
SUPERVISOR.request(M.RECORD_DELETE, ChildLink.record_delete)
SUPERVISOR.request(M.CLUSTER_LOCATE, ChildLink.cluster_locate)
SUPERVISOR.request(M.CLUSTER_STREAMS, ChildLink.cluster_streams)
SUPERVISOR.request(M.CLUSTER_NODES, ChildLink.cluster_nodes)
SUPERVISOR.request(M.CLUSTER_DELETE, ChildLink.cluster_delete)
SUPERVISOR.request(M.CLUSTER_KICK, ChildLink.cluster_kick)
SUPERVISOR.notice(M.CLUSTER_STREAM, ChildLink.cluster_stream)


def _viewer(a: M.AdmissionArgs) -> str | None:
    v = a.get("viewer")
    return str(v)[:64] if v else None
