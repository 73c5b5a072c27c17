"""Login, tokens, users and routes: `/api/v1/...` of API.md.

Reads are answered from this front's copy of the stores; changes go to the
supervisor, which persists them before answering and broadcasts them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ...errors import Forbidden, HubError, NotFound, Unauthorized
from ...ipc import messages as M
from ...store.routes import canonical_pattern
from ...store.users import NAME_MAX, PASSWORD_MAX, canonical_name
from ..access import NOT_ADMIN, TOKEN_INVALID, token_from, user_for_token
from .paging import page_params
from ..http_responses import CORS, error_body, error_headers, public_message
from .body import json_body, parse_json, read_body
from .json import JsonResponse

if TYPE_CHECKING:
    from ..context import FrontContext

NO_BODY = "未提供用户名或密码"  # the reference's: no user name or password given

PREFLIGHT = {"Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
             "Access-Control-Allow-Headers": "Authorization, Content-Type",
             "Access-Control-Max-Age": "600"}

#: Paths answered without a token (compared lower-cased, as the reference does).
OPEN_PATHS = frozenset({"/api/v1/server", "/api/v1/runtime", "/api/v1/login",
                        "/api/v1/refreshtoken", "/api/crossdomain.xml", "/api/v1/openapi.json"})


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


def _ok() -> Response:
    return Response(b"", headers=CORS)


async def _json_body(request: Request) -> Any:
    return await json_body(request)


class TokenGate:
    """Every `/api/` path but the open ones needs a valid access token, checked
    before routing (an unknown path without a token is 401, with one 404);
    only admins pass, except for reading streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS" and scope["path"].startswith("/api/"):
            # CORS preflight (Better: the reference answers 404), so pages on
            # other origins can send JSON bodies and Authorization: Bearer.
            await Response(b"", status_code=204, headers={**CORS, **PREFLIGHT})(scope, receive, send)
            return
        if scope["type"] != "http" or not scope["path"].startswith("/api/") \
                or scope["path"].lower() in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            user = user_for_token(scope["app"].state.front,
                                  token_from(request.query_params, request.headers.get("authorization")))
            reading_streams = scope["method"] in ("GET", "HEAD") and (
                scope["path"] == "/api/v1/streams" or scope["path"].startswith("/api/v1/streams/")
                or scope["path"].startswith("/api/v1/recordings/"))  # the pull right is checked there
            if not user.admin and not reading_streams:
                raise Forbidden(NOT_ADMIN)
        except HubError as e:
            response = Response(error_body(public_message(e)), status_code=e.http_status,
                                media_type="application/json", headers={**CORS, **error_headers(e)})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)


async def login(request: Request) -> Response:

    try:
        body = parse_json(await read_body(request))
    except ValueError:
        raise Forbidden(NO_BODY) from None
    if not isinstance(body, dict):
        raise Forbidden(NO_BODY)
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise Forbidden("用户名或密码错误")
    if len(name) > NAME_MAX or len(password) > PASSWORD_MAX:
        raise Forbidden("用户名或密码错误")  # no user can have these: no need to ask
    pair = await _front(request).supervisor_request(M.LOGIN({"username": name, "password": password}),
                                                    timeout=10.0)
    return JsonResponse(pair)


async def refresh_token(request: Request) -> Response:

    front = _front(request)
    token = token_from(request.query_params, request.headers.get("authorization"))
    # Anyone may ask: junk, an access token, an expired or rotated refresh
    # token are 401 from this front's copy of the users, never the
    # supervisor's work (a change of the users table, under its one lock);
    # nor is a user's refresh past their allowance (429, hub.store.sessions).
    if front.users is None or front.tokens is None:
        raise Unauthorized(TOKEN_INVALID)
    claims = front.tokens.verify(token, "refresh", front.users.token_lookup)
    front.rotations.take(claims.sub, time.monotonic())
    return JsonResponse(await front.supervisor_request(M.REFRESH({"token": token})))


async def users_collection(request: Request) -> Response:

    front = _front(request)
    if request.method == "POST":
        obj = await _json_body(request)
        flag = request.query_params.get("update_password", "0")
        await front.store_write(M.USERS_UPSERT({"user": obj, "update_password": flag in ("1", "true")}))
        return _ok()
    size, token = page_params(request)
    assert front.users is not None
    total, next_token, items = front.users.page(size, token)
    return JsonResponse({"total": total, "next_page_token": next_token, "users": items})


async def user_item(request: Request) -> Response:

    front = _front(request)
    name = canonical_name(request.path_params["name"])
    if request.method == "DELETE":
        await front.store_write(M.USERS_DELETE({"name": name}))
        return _ok()
    assert front.users is not None
    try:
        return JsonResponse(front.users.get_public(name))
    except NotFound:
        raise NotFound("404 page not found") from None


async def routes_collection(request: Request) -> Response:

    front = _front(request)
    if request.method == "POST":
        obj = await _json_body(request)
        await front.store_write(M.ROUTES_UPSERT({"route": obj}))
        return _ok()
    size, token = page_params(request)
    assert front.routes is not None
    total, next_token, items = front.routes.page(size, token)
    return JsonResponse({"total": total, "next_page_token": next_token, "routes": items})


async def route_item(request: Request) -> Response:

    front = _front(request)
    pattern = request.path_params["pattern"]
    if request.method == "DELETE":
        await front.store_write(M.ROUTES_DELETE({"pattern": pattern}))
        return _ok()
    assert front.routes is not None
    try:
        return JsonResponse(front.routes.get_public(pattern))
    except NotFound:
        raise NotFound("404 page not found") from None


__all__ = ["TokenGate", "login", "refresh_token", "users_collection", "user_item",
           "routes_collection", "route_item", "canonical_pattern"]
