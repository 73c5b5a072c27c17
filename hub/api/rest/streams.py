"""`/api/v1/streams...`: gathered from every shard (sources) and every front
(consumers), paged in one sorted order across shards."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ...errors import BadRequest, HubError, NotFound
from ...ipc import messages as M
from ...ipc.methods import Ask, R
from ...placement import canonical_path
from .cluster import cluster_view, kick_elsewhere, merge, this_node
from .cluster import delete_stream as cluster_delete
from .paging import page_params, paginate
from .json import JsonResponse

if TYPE_CHECKING:
    from ..context import FrontContext

CONSUMER_SUFFIX = ":consumer"


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


async def _all_shards(front: FrontContext, msg: Ask[list[R]]) -> list[list[R]]:
    """Every shard's answer to `msg`; an empty list for one down or failing."""
    async def one(i: int) -> list[R]:
        ch = front.shards.channels[i]
        if ch is None:
            return []
        try:
            return await ch.call(msg, timeout=3.0)
        except HubError:
            return []

    return list(await asyncio.gather(*(one(i) for i in range(len(front.shards)))))


async def consumers_by_path(front: FrontContext, paths: list[str] | None = None,
                            detail: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every front's players by stream path (this front's without IPC): of
    `paths` only if given; each `{"id"}` only without `detail`."""
    replies = [front.local_consumers(None if paths is None else set(paths), detail)]
    ask: M.FrontConsumersArgs = {"except": front.args.index, "detail": detail}
    if paths is not None:
        ask["paths"] = paths
    try:
        replies += await front.supervisor_request(M.FRONT_CONSUMERS(ask), timeout=3.0)
    except HubError:
        pass
    out: dict[str, list[dict[str, Any]]] = {}
    for reply in replies:
        for path, items in reply.items():
            out.setdefault(path, []).extend(items)
    return out


def _with_consumers(info: dict[str, Any], cs: list[dict[str, Any]], detail: bool) -> dict[str, Any]:
    info = dict(info)
    info["cc"] = len(cs)
    if detail and cs:
        info["cs"] = sorted(cs, key=lambda c: c["start_on"])
    return info


async def list_streams(request: Request) -> Response:

    front = _front(request)
    detail = request.query_params.get("c", "0") in ("1", "true")
    size, token = page_params(request)
    infos = [s for reply in await _all_shards(front, M.LIST_STREAMS({})) for s in reply]
    remote: dict[str, list[dict[str, Any]]] = {}
    if front.config.cluster:  # every node's streams, each with its `node`; the others' consumers
        infos, remote = await cluster_view(front, infos, {})
    total, next_token, items = paginate(infos, "path", size, token)
    # The players of this page's streams only, and only counted without `c`:
    # a listing costs the page, not every player of the tree.
    cs = await consumers_by_path(front, [s["path"] for s in items], detail)
    if front.config.cluster:
        cs = merge([{"node": this_node(front), "consumers": cs}])[1]
        for path, items_elsewhere in remote.items():
            cs.setdefault(path, []).extend(items_elsewhere)
    return JsonResponse({"total": total, "next_page_token": next_token,
                         "streams": [_with_consumers(s, cs.get(s["path"], []), detail) for s in items]})


async def stream_item(request: Request) -> Response:

    front = _front(request)
    raw = request.path_params["path"]
    if request.method == "DELETE":
        if raw.endswith(CONSUMER_SUFFIX):
            cid_text = request.query_params.get("cid", "")
            if not cid_text.strip().isdigit():
                raise BadRequest("cid must be a consumer id")
            path = canonical_path(raw[:-len(CONSUMER_SUFFIX)])
            cid, node = int(cid_text), request.query_params.get("node", "")
            kicked = False
            if not node or not front.config.cluster or node == this_node(front):
                kicked = front.kick_local(cid) or bool(await front.supervisor_request(
                    M.KICK_CONSUMER({"cid": cid, "except": front.args.index})))
            if not kicked and front.config.cluster:  # held by another node
                await kick_elsewhere(front, path, cid, node)
            return Response(b"", headers={"Access-Control-Allow-Origin": "*"})
        path = canonical_path(raw)
        if not front.config.cluster or not await cluster_delete(front, path):
            await front.shard_request(path, M.DELETE_STREAM({"path": path}))
        return Response(b"", headers={"Access-Control-Allow-Origin": "*"})
    path = canonical_path(raw)
    detail = request.query_params.get("c", "0") in ("1", "true")
    if front.config.cluster:  # whichever node owns it
        infos, cs = await cluster_view(front, await _one_local(front, path),
                                       await consumers_by_path(front, [path], detail))
        found = [i for i in infos if i["path"] == path]
        if not found:
            raise NotFound("404 page not found")
        return JsonResponse(_with_consumers(found[0], cs.get(path, []), detail))
    try:
        info = await front.shard_request(path, M.STREAM_INFO({"path": path}))
    except NotFound:
        raise NotFound("404 page not found") from None
    cs = await consumers_by_path(front, [path], detail)
    return JsonResponse(_with_consumers(info, cs.get(path, []), detail))


async def _one_local(front: FrontContext, path: str) -> list[dict[str, Any]]:
    """This node's stream of `path` as its shard lists it (a relay marked), or none."""
    try:
        streams: list[dict[str, Any]] = await front.shard_request(path, M.LIST_STREAMS({}), timeout=3.0)
    except HubError:
        return []
    return [s for s in streams if s["path"] == path]
