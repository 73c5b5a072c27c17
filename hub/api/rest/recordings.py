"""`/api/v1/recordings`: recording rules, and playback of what was recorded.

- ``GET /api/v1/recordings`` (admin): the rules (configured and API ones),
  what every shard is recording now, and the counters (files, bytes,
  stopped recordings, deletions).
- ``POST /api/v1/recordings`` (admin): add or replace a rule —
  ``{"pattern", "format": "fmp4", "segment": seconds, "retention":
  {"max_age": seconds | "7d", "max_bytes": bytes | "10GB"}}``.
- ``DELETE /api/v1/recordings?pattern=/cams/`` (admin): remove an API rule.
- ``GET /api/v1/recordings/PATH``: PATH's recordings (start, end, duration,
  size), paged by name, optionally only those overlapping ``start``/``end``.
- ``GET /api/v1/recordings/PATH/mp4?start=&end=``: one MP4 for the range
  (HTTP Range: 206, or 416 past the end), at most `MAX_RANGE` seconds.
- ``GET /api/v1/recordings/PATH/index.m3u8?start=&end=``: an HLS VOD
  playlist over the same MP4 (byte ranges).

Listing a path's folder, indexing and joining run in the front's few
recording threads, bounded (503 past them), and a joined range is kept for the requests that follow
(`recording_files`): none of it runs on the front's loop.

Times are Unix seconds or ISO 8601 (``2024-05-01T12:00:00Z``). Reading
needs the user's pull right on PATH (admins: every path).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...errors import BadRequest, Forbidden, HubError, NotFound, RangeNotSatisfiable
from ...ipc import messages as M
from ...media.hls import VodSegment, render_vod_playlist
from ...media.mp4.playback import Mp4Range
from ...placement import canonical_path
from ...store.recordings import parse_name, path_folder
from ...store.users import User
from ..access import token_from
from ..http_responses import ABORT_EXTENSION, CORS
from .body import json_body
from .json import JsonResponse
from .paging import page_params
from .recording_files import (MAX_FILES, JoinedRanges, RecordingIndex, list_folder, overlapping, parse_range,
                              recording_workers, stream_range)

if TYPE_CHECKING:
    from ..context import FrontContext

#: The longest range one MP4 or playlist covers (its generated moofs, held while
#: it is sent: about 1 KB per 1 s fragment, ~4 MB).
MAX_RANGE = 3600.0
#: HLS VOD segment length over a range (from a keyframe to the first one past it).
VOD_TARGET = 2.0
_WORKERS = recording_workers()
_INDEX = RecordingIndex(_WORKERS)
_JOINED = JoinedRanges(_WORKERS)


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


# -- rules --------------------------------------------------------------------------------


async def recordings_collection(request: Request) -> Response:
    front = _front(request)
    if request.method == "POST":
        obj = await json_body(request)
        await front.store_write(M.RECORD_UPSERT({"rule": obj}))
        return Response(b"", headers=CORS)
    if request.method == "DELETE":
        pattern = request.query_params.get("pattern", "")
        if not pattern:
            raise BadRequest("which rule: ?pattern=")
        await front.store_write(M.RECORD_DELETE({"pattern": pattern}))
        return Response(b"", headers=CORS)
    rules = await front.supervisor_request(M.RECORD_RULES({}))
    status: dict[str, Any] = {"recording": [], "files": 0, "bytes": 0, "errors": 0, "deleted": 0}
    for reply in await _all_shards(front):
        for k in ("files", "bytes", "errors", "deleted"):
            status[k] += int(reply.get(k, 0))
        status["recording"] += [{**r, "since": _iso(r["since"])} for r in reply.get("recording", [])]
    status["recording"].sort(key=lambda r: r["path"])
    return JsonResponse({"total": len(rules), "rules": rules, **status})


async def _all_shards(front: FrontContext) -> list[dict[str, Any]]:
    out = []
    for ch in front.shards.channels:
        if ch is None:
            continue
        try:
            out.append(await ch.call(M.RECORD_STATUS({}), timeout=3.0))
        except HubError:
            continue
    return out


# -- playback -----------------------------------------------------------------------------


def _iso(t: float) -> str:
    return datetime.fromtimestamp(round(t, 3), timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def parse_time(name: str, raw: str | None) -> float | None:
    """Unix seconds or ISO 8601 (naive means UTC)."""
    if raw is None or raw == "":
        return None
    try:
        t = float(raw)
    except ValueError:
        try:
            d = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
        except ValueError:
            raise BadRequest(f"{name} must be Unix seconds or ISO 8601, got {raw!r}") from None
        t = (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).timestamp()
    if not 0 <= t < 1e11:  # also NaN
        raise BadRequest(f"{name} out of range")
    return t


def _check_right(request: Request, path: str) -> None:
    user: User = request.scope["state"]["user"]
    if not user.admin and not user.can_pull(path):
        raise Forbidden("Forbidden")


async def recording_item(request: Request) -> Response:
    raw = "/" + request.path_params["path"].strip("/")
    if raw.endswith("/mp4"):
        return await _mp4(request, canonical_path(raw[:-4]))
    if raw.endswith("/index.m3u8"):
        return await _playlist(request, canonical_path(raw[:-11]))
    return await _listing(request, canonical_path(raw))


async def _listing(request: Request, path: str) -> Response:
    _check_right(request, path)
    front = _front(request)
    size, token = page_params(request)
    start = parse_time("start", request.query_params.get("start"))
    end = parse_time("end", request.query_params.get("end"))
    folder = path_folder(front.config.recordings_path, path)
    listed = await _WORKERS.run(list_folder, folder)
    if start is not None or end is not None:
        listed = overlapping(listed, start or 0.0, end or float("inf"))
    total = len(listed)
    after = parse_name(token) if token else None
    if after is not None:  # the last name of the previous page (it may be gone since)
        listed = [f for f in listed if f.order > after]
    # A page is indexed whole, and one request indexes at most MAX_FILES:
    # a bigger page size is clamped (its next_page_token leads on).
    page = listed[:min(size, MAX_FILES)]
    sizes = {str(folder / f.name): f.size for f in page}
    items = [{"name": f.path.rsplit("/", 1)[-1], "start": _iso(f.start),
              "end": _iso(f.start + f.index.duration), "duration": round(f.index.duration, 3),
              "size": sizes[f.path]} for f in await _INDEX.files(folder, page)]
    return JsonResponse({"path": path, "total": total,
                         "next_page_token": page[-1].name if page else token, "recordings": items})


async def _joined(request: Request, path: str) -> Mp4Range:
    _check_right(request, path)
    start = parse_time("start", request.query_params.get("start"))
    end = parse_time("end", request.query_params.get("end"))
    if start is None:
        raise BadRequest("start is required")
    if end is None:
        end = min(time.time(), start + MAX_RANGE)
    if end <= start:
        raise BadRequest("end must be after start")
    if end - start > MAX_RANGE:
        raise BadRequest(f"a range is at most {MAX_RANGE:g} seconds")
    folder = path_folder(_front(request).config.recordings_path, path)
    listed = overlapping(await _WORKERS.run(list_folder, folder), start, end)
    if not listed:
        raise NotFound("no recording in that range")
    return await _JOINED.join(folder, listed, await _INDEX.files(folder, listed), start, end)


async def _mp4(request: Request, path: str) -> Response:
    rng = await _joined(request, path)
    length = rng.length
    headers = {**CORS, "Accept-Ranges": "bytes", "Content-Type": "video/mp4", "Cache-Control": "no-cache"}
    want = parse_range(request.headers.get("range"), length)
    if want is None:
        first, stop, status = 0, length, 200
    else:
        if want.first >= length:
            raise RangeNotSatisfiable(f"bytes */{length}")
        first, stop, status = want.first, want.stop, 206
        headers["Content-Range"] = f"bytes {first}-{stop - 1}/{length}"
    headers["Content-Length"] = str(stop - first)
    if request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers)
    abort = (request.scope.get("extensions") or {}).get(ABORT_EXTENSION, {}).get("abort")
    return StreamingResponse(stream_range(rng, first, stop, abort), status_code=status, headers=headers)


async def _playlist(request: Request, path: str) -> Response:
    rng = await _joined(request, path)
    # The segments' byte ranges hold for this exact range: pin its end
    # inside the last fragment, so a later request (the file may have grown)
    # picks the same fragments.
    last = rng.fragments[-1]
    query = {"start": request.query_params["start"], "end": repr(rng.end - last.duration / 2)}
    token = token_from(request.query_params, request.headers.get("authorization"))
    if "token" in request.query_params and token:
        query["token"] = token
    segments = [VodSegment("mp4", seconds, (n, offset), "mp4", (rng.init_length, 0))
                for offset, n, seconds in rng.vod_segments(VOD_TARGET)]
    body = render_vod_playlist(segments, urlencode(query)).encode()
    return Response(body, media_type="application/vnd.apple.mpegurl",
                    headers={**CORS, "Cache-Control": "no-cache"})
