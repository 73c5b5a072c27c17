"""A cluster's API (`--cluster`): `/api/v1/cluster`, and every node's streams.

`GET /api/v1/streams` on any node lists the streams of every node: this
node's as today, the others' asked through the supervisor (a request to
each node over Redis). Each stream carries `node`, its owner; a stream
relayed to other nodes is listed once, under its owner, with the consumers
of every node (each with its `node`). A node that does not answer in time
is left out; with Redis away, a node lists its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ...cluster.settings import node_name
from ...errors import HubError, NotFound
from ...ipc import messages as M
from .json import JsonResponse

if TYPE_CHECKING:
    from ..context import FrontContext

#: The supervisor asks every node (3 s each, at once) and answers.
REMOTE_TIMEOUT = 4.0

Consumers = dict[str, list[dict[str, Any]]]


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


def this_node(front: FrontContext) -> str:
    return node_name(front.config.node_name)


async def cluster_nodes(request: Request) -> Response:
    front = _front(request)
    if not front.config.cluster:
        raise NotFound("not running as a cluster (--cluster)")
    return JsonResponse(await front.supervisor_request(M.CLUSTER_NODES({}), timeout=REMOTE_TIMEOUT))


async def cluster_view(front: FrontContext, infos: list[dict[str, Any]],
                       consumers: Consumers) -> tuple[list[dict[str, Any]], Consumers]:
    """This node's streams and consumers and every other node's, merged."""
    parts: list[dict[str, Any]] = [{"node": this_node(front), "streams": infos, "consumers": consumers}]
    try:
        parts += await front.supervisor_request(M.CLUSTER_STREAMS({}), timeout=REMOTE_TIMEOUT)
    except HubError:
        pass  # Redis away: this node's own
    return merge(parts)


def merge(parts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Consumers]:
    """One stream per path (its owner's; a relay is not a stream of its own,
    unless its owner did not answer), with `node`; every node's consumers
    by path, each with `node`."""
    streams: dict[str, dict[str, Any]] = {}
    relayed: dict[str, dict[str, Any]] = {}
    out: Consumers = {}
    for part in parts:
        node = str(part.get("node", ""))
        for info in part.get("streams") or []:
            if info.get("relay"):
                relayed[info["path"]] = {k: v for k, v in info.items() if k != "relay"} | {"node": info["relay"]}
                continue
            info = {**info, "node": node}
            old = streams.get(info["path"])
            # Two owners only for a moment (a takeover): the newer publisher is the one.
            if old is None or str(info.get("start_on", "")) > str(old.get("start_on", "")):
                streams[info["path"]] = info
        for path, items in (part.get("consumers") or {}).items():
            out.setdefault(path, []).extend({**c, "node": node} for c in items)
    for path, info in relayed.items():  # its owner did not answer (Redis away): as relayed here
        streams.setdefault(path, info)
    return list(streams.values()), out


async def delete_stream(front: FrontContext, path: str) -> bool:
    """Send a DELETE to the node that owns the stream: True if it was another node."""
    try:
        return bool(await front.supervisor_request(M.CLUSTER_DELETE({"path": path}), timeout=REMOTE_TIMEOUT))
    except NotFound:
        return False


async def kick_elsewhere(front: FrontContext, path: str, cid: int, node: str) -> None:
    """DELETE of a consumer this node does not hold: its `node`, or the node
    whose consumers of `path` include that id."""
    if not node:
        infos, consumers = await cluster_view(front, [], {})
        found = [c.get("node") for c in consumers.get(path, []) if c.get("id") == cid]
        node = str(found[0]) if found else ""
    if node and node != this_node(front):
        await front.supervisor_request(M.CLUSTER_KICK({"node": node, "cid": cid}), timeout=REMOTE_TIMEOUT)
