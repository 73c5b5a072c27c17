"""WHEP and WHIP signalling over HTTP (RFC 9725 and the WHEP draft), in the
Starlette app.

    POST    /streams/PATH/whep        SDP offer -> 201, SDP answer, Location, ETag   (pull right)
    POST    /streams/PATH/whip        the same for a publisher                          (push right)
    PATCH   /streams/PATH/wh?p/ID     trickle ICE fragment -> 204; ICE restart -> 422
    DELETE  /streams/PATH/wh?p/ID     ends the session -> 200
    OPTIONS on either                 Accept-Post / Accept-Patch, Link: the ICE servers, CORS

The token is the pull or push right's (`Authorization: Bearer` or
`?token=`) when `auth` is on; a session's URL is its own capability (128
random bits), so DELETE and PATCH need no token. WHEP sessions live in the
front that answered; one that another front holds is found through the
stream's shard, which asks the front the session's id names (an id of
this front, or one we never made, is answered here: 404). WHIP sessions
live in the owning shard and are asked there. Only GET and HEAD on `/streams/...` are media
requests; these methods reach this app (`hub.api.sniff`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...errors import Forbidden, NotFound, PreconditionFailed, Unprocessable, UnsupportedMediaType
from ...ipc import messages as M
from ...media.webrtc.offer import parse_offer
from ...media.webrtc.trickle import parse_sdpfrag
from ...placement import canonical_path
from ..access import check_pull_token, token_from, user_for_token
from ..http_responses import CORS
from ..rest.body import read_body
from .service import front_of

if TYPE_CHECKING:
    from ..context import FrontContext

__all__ = ["webrtc_routes", "SDP", "SDPFRAG"]

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
_EXPOSE = {**CORS, "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post"}
RESTART = "ICE restarts are not supported: end this session and make a new one"


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


def _path(request: Request) -> str:
    return canonical_path("/" + str(request.path_params["path"]))


def _need_type(request: Request, wanted: str) -> None:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != wanted:
        raise UnsupportedMediaType(f"Content-Type must be {wanted}, not {ctype[:60] or '(none)'}")


def _links(front: FrontContext) -> dict[str, str]:
    servers = front.config.webrtc.ice_servers
    return {"Link": ", ".join(f'<{s}>; rel="ice-server"' for s in servers)} if servers else {}


def _options(front: FrontContext, methods: str, accept: dict[str, str]) -> Response:
    return Response(b"", status_code=204, headers={
        **_EXPOSE, **accept, **_links(front), "Allow": methods, "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
        "Access-Control-Max-Age": "600"})


def _client(request: Request) -> tuple[str, int]:
    c = request.client
    return (c.host, c.port) if c is not None else ("", 0)


def _created(front: FrontContext, sdp: str, location: str, etag: str) -> Response:
    return Response(sdp.encode(), status_code=201, media_type=SDP, headers={
        **_EXPOSE, **_links(front), "Location": location, "ETag": etag, "Accept-Patch": SDPFRAG})


async def whep_endpoint(request: Request) -> Response:
    front = _front(request)
    if request.method == "OPTIONS":
        return _options(front, "POST, OPTIONS", {"Accept-Post": SDP})
    path = _path(request)
    _need_type(request, SDP)
    user = check_pull_token(front, request.query_params, request.headers.get("authorization"), path)
    offer = parse_offer(await read_body(request))
    view = await front.views.open(path)
    host, port = client = _client(request)
    ticket = await front.admit_player(view.desc.path, f"{host}:{port}")  # limits, drain
    server = request.scope.get("server") or ("", 0)
    try:
        session, sdp = front.webrtc.whep(view, offer, client, str(server[0]))
    except BaseException:
        ticket.release()
        raise
    session.consumer.ticket = ticket  # released when the player leaves (StreamViews.retire)
    session.consumer.user = user.name if user is not None else ""
    return _created(front, sdp, f"/streams{quote(path)}/whep/{session.id}", session.etag)


async def whip_endpoint(request: Request) -> Response:
    front = _front(request)
    if request.method == "OPTIONS":
        return _options(front, "POST, OPTIONS", {"Accept-Post": SDP})
    path = _path(request)
    _need_type(request, SDP)
    user_name = ""
    if front.config.auth:
        user = user_for_token(front, token_from(request.query_params, request.headers.get("authorization")))
        if not user.can_push(path):
            raise Forbidden("Forbidden")
        user_name = user.name
    body = await read_body(request)
    parse_offer(body)  # a bad offer is refused here, without asking the shard
    host, port = _client(request)
    remote = f"{host}:{port}"
    await front.admit_publisher(path, remote)  # limits, drain; the shard holds the grant from here
    server = request.scope.get("server") or ("", 0)
    try:
        reply = await front.shard_request(path, M.WHIP_OFFER({
            "path": path, "sdp": body, "client": remote, "host": str(server[0]),
            "user": user_name}), timeout=5.0)
    except BaseException:
        front.release_publisher(path, remote)
        raise
    return _created(front, str(reply["sdp"]), f"/streams{quote(path)}/whip/{reply['id']}", str(reply["etag"]))


async def _session_args(request: Request) -> M.SessionOpArgs:
    args: M.SessionOpArgs = {"id": str(request.path_params["session"]), "path": _path(request),
                               "op": "delete" if request.method == "DELETE" else "patch",
                               "if_match": request.headers.get("if-match", "").strip() or None}
    if request.method == "PATCH":
        _need_type(request, SDPFRAG)
        args["ufrag"] = parse_sdpfrag(await read_body(request)).ice_ufrag
    return args


def _answer(result: object, method: str) -> Response:
    if result is None:
        raise NotFound("no such session")
    if result == "precondition":
        raise PreconditionFailed("If-Match does not name this session's ETag")
    if result == "restart":
        raise Unprocessable(RESTART)
    return Response(b"", status_code=200 if method == "DELETE" else 204, headers=CORS)


async def whep_session(request: Request) -> Response:
    front = _front(request)
    if request.method == "OPTIONS":
        return _options(front, "PATCH, DELETE, OPTIONS", {"Accept-Patch": SDPFRAG})
    args = await _session_args(request)
    result = front.webrtc.session_op(args)
    owner = front_of(str(args["id"]), front.webrtc.id_key)
    if result is None and owner is not None and owner != front.webrtc.index and owner < front.config.front_count:
        # Held by the front its id names: the stream's shard asks that one.
        args["front"] = owner
        result = await front.shard_request(str(args["path"]), M.WEBRTC_SESSION(args), timeout=3.0)
    return _answer(result, request.method)


async def whip_session(request: Request) -> Response:
    front = _front(request)
    if request.method == "OPTIONS":
        return _options(front, "PATCH, DELETE, OPTIONS", {"Accept-Patch": SDPFRAG})
    args = await _session_args(request)
    result = await front.shard_request(str(args["path"]), M.WHIP_SESSION(args), timeout=3.0)
    return _answer(result, request.method)


def webrtc_routes() -> list[BaseRoute]:
    return [
        Route("/streams/{path:path}/whep", whep_endpoint, methods=["POST", "OPTIONS"]),
        Route("/streams/{path:path}/whep/{session}", whep_session, methods=["PATCH", "DELETE", "OPTIONS"]),
        Route("/streams/{path:path}/whip", whip_endpoint, methods=["POST", "OPTIONS"]),
        Route("/streams/{path:path}/whip/{session}", whip_session, methods=["PATCH", "DELETE", "OPTIONS"]),
    ]
