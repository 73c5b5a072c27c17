"""The supervisor's side of a cluster (`--cluster`, hub.cluster).

Its tree as the other nodes see it (`LocalTree`: streams and consumers,
DELETEs and kicks forwarded here), and the children's cluster requests:
where to pull a path from (a shard), the other nodes' streams, the nodes,
forwarded DELETEs (a front); the shards' notices of streams going live and
ending feed the stream directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..ipc import messages as M
from ..placement import canonical_path, shard_of

if TYPE_CHECKING:
    from ..cluster.node import ClusterNode
    from .admission import Admission
    from .tree import Child, ProcessTree

REQUESTS = frozenset({M.CLUSTER_LOCATE, M.CLUSTER_STREAMS, M.CLUSTER_NODES, M.CLUSTER_DELETE, M.CLUSTER_KICK})
CHILD_TIMEOUT = 2.0


class LocalTree:
    """This node's process tree, for `hub.cluster.node.LocalNode`."""

    def __init__(self, tree: ProcessTree, admission: Admission) -> None:
        self.tree = tree
        self.admission = admission

    async def local_streams(self) -> dict[str, Any]:
        shards = await self.tree.request_all("list_streams", {}, kinds=("shard",), timeout=CHILD_TIMEOUT)
        fronts = await self.tree.request_all("consumers", {}, kinds=("front",), timeout=CHILD_TIMEOUT)
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
        await child.channel.request("delete_stream", {"path": path, "stream_id": stream_id},
                                    timeout=CHILD_TIMEOUT)

    async def kick(self, cid: int) -> bool:
        replies = await self.tree.request_all("kick", {"cid": cid}, kinds=("front",), timeout=CHILD_TIMEOUT)
        return any(r for _c, r in replies)

    def players(self) -> int:
        return self.admission.players


async def child_request(node: ClusterNode, method: str, args: dict[str, Any]) -> Any:
    if method == M.CLUSTER_LOCATE:
        return await node.locate(canonical_path(str(args["path"])), bool(args.get("routed")))
    if method == M.CLUSTER_STREAMS:
        return await node.remote_streams()
    if method == M.CLUSTER_NODES:
        return await node.nodes()
    if method == M.CLUSTER_DELETE:
        return await node.forward_delete(canonical_path(str(args["path"])))
    if method == M.CLUSTER_KICK:
        return await node.forward_kick(str(args["node"]), int(args["cid"]))
    raise NotFound(f"unknown cluster method {method!r}")


def child_notice(node: ClusterNode, child: Child, args: dict[str, Any]) -> None:
    """A shard's stream went live or ended."""
    if child.kind == "shard":
        node.stream_event(child.index, args)
