"""`/api/v1/streams...`: gathered from every shard (sources) and every front
(consumers), paged in one sorted order across shards."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ...errors import BadRequest, HubError, NotFound
from ...placement import canonical_path
from .paging import page_params, paginate
from .json import JsonResponse

if TYPE_CHECKING:
    from ..context import FrontContext

CONSUMER_SUFFIX = ":consumer"


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


async def _all_shards(front: FrontContext, method: str, args: dict[str, Any]) -> list[Any]:
    async def one(i: int) -> Any:
        ch = front.shards.channels[i]
        if ch is None:
            return []
        try:
            return await ch.request(method, args, timeout=3.0)
        except HubError:
            return []

    return list(await asyncio.gather(*(one(i) for i in range(len(front.shards)))))


async def consumers_by_path(front: FrontContext) -> dict[str, list[dict[str, Any]]]:
    """Every front's players, by stream path (this front's without IPC)."""
    replies = [front.local_consumers()]
    try:
        replies += await front.supervisor_request("front_consumers", {"except": front.args.index},
                                                  timeout=3.0)
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
    infos = [s for reply in await _all_shards(front, "list_streams", {}) for s in reply]
    cs = await consumers_by_path(front)
    total, next_token, items = paginate(infos, "path", size, token)
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
            if not front.kick_local(int(cid_text)):
                await front.supervisor_request("kick_consumer", {"cid": int(cid_text),
                                                                 "except": front.args.index})
            return Response(b"", headers={"Access-Control-Allow-Origin": "*"})
        path = canonical_path(raw)
        await front.shard_request(path, "delete_stream", {"path": path})
        return Response(b"", headers={"Access-Control-Allow-Origin": "*"})
    path = canonical_path(raw)
    try:
        info = await front.shard_request(path, "stream_info", {"path": path})
    except NotFound:
        raise NotFound("404 page not found") from None
    detail = request.query_params.get("c", "0") in ("1", "true")
    cs = await consumers_by_path(front)
    return JsonResponse(_with_consumers(info, cs.get(path, []), detail))
