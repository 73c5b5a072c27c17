"""The supervisor's side of a cluster (`--cluster`, hub.cluster).

Its tree as the other nodes see it (`LocalTree`: streams and consumers,
DELETEs and kicks forwarded here). The children's cluster requests (where to
pull a path from, the other nodes' streams, the nodes, forwarded DELETEs)
and the shards' notices of streams going live and ending are handled in
the supervisor's table (hub.supervisor.links).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..ipc import messages as M
from ..placement import canonical_path, shard_of

if TYPE_CHECKING:
    from .admission import Admission
    from .tree import ProcessTree

CHILD_TIMEOUT = 2.0


class LocalTree:
    """This node's process tree, for `hub.cluster.node.LocalNode`."""

    def __init__(self, tree: ProcessTree, admission: Admission) -> None:
        self.tree = tree
        self.admission = admission

    async def local_streams(self) -> dict[str, Any]:
        shards = await self.tree.request_all(M.LIST_STREAMS({}), kinds=("shard",), timeout=CHILD_TIMEOUT)
        fronts = await self.tree.request_all(M.CONSUMERS({}), kinds=("front",), timeout=CHILD_TIMEOUT)
        consumers: dict[str, list[dict[str, Any]]] = {}
        for _child, reply in fronts:
            for path, items in reply.items():
                consumers.setdefault(path, []).extend(items)
        return {"streams": [s for _child, reply in shards for s in reply], "consumers": consumers}

    async def delete_stream(self, path: str, stream_id: int | None = None) -> None:
        path = canonical_path(path)
        shards = [c for c in self.tree.children if c.kind == "shard"]
        child = shards[shard_of(path, len(shards))]
        if child.channel is None:
            raise NotFound(f"{path}: its shard is restarting")
        await child.channel.call(M.DELETE_STREAM({"path": path, "stream_id": stream_id}), timeout=CHILD_TIMEOUT)

    async def kick(self, cid: int) -> bool:
        replies = await self.tree.request_all(M.KICK({"cid": cid}), kinds=("front",), timeout=CHILD_TIMEOUT)
        return any(r for _c, r in replies)

    def players(self) -> int:
        return self.admission.players
