"""The Starlette app: the REST API and everything that is not a media path.

Media requests (`/streams/...`, `/ws/...`) never reach this app: the sniffing
protocol hands them to the raw media protocols first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...errors import BadRequest, HubError
from ...ipc import messages as M
from .admin import (TokenGate, login, refresh_token, route_item, routes_collection, user_item,
                        users_collection)
from .cluster import cluster_nodes
from .console import console_routes
from .openapi import openapi
from .ops import CountRequests, healthz, metrics, readyz
from .json import JsonResponse
from .streams import list_streams, stream_item
from ..webrtc.routes import webrtc_routes
from .recordings import recording_item, recordings_collection
from ..http_responses import CORS, CROSSDOMAIN_XML, error_body, error_headers, public_message

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.rest")


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


async def server_info(request: Request) -> Response:
    return JsonResponse(await _front(request).supervisor_request(M.SERVER_INFO({})))


async def runtime(request: Request) -> Response:
    extra = request.query_params.get("extra", "0")
    if extra not in ("0", "1", "", "true", "false"):
        raise BadRequest("extra must be 0 or 1")
    return JsonResponse(await _front(request).supervisor_request(
        M.RUNTIME({"extra": extra in ("1", "true")})))


async def crossdomain(request: Request) -> Response:
    return Response(CROSSDOMAIN_XML, media_type="application/xml")


async def hub_error(request: Request, exc: Exception) -> Response:
    """A client's mistake says what it was; our own failure (5xx: an IPC
    link, a child) says only its kind, and the detail goes to the log."""
    assert isinstance(exc, HubError)
    return Response(error_body(public_message(exc)), status_code=exc.http_status,
                    media_type="application/json", headers={**CORS, **error_headers(exc)})


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "404 page not found", 405: "method not allowed"}.get(exc.status_code, exc.detail)
    return Response(error_body(message), status_code=exc.status_code,
                    media_type="application/json", headers={**CORS, **(exc.headers or {})})


def build_app(front: FrontContext) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/api/v1/server", server_info, methods=["GET"]),
        Route("/api/v1/runtime", runtime, methods=["GET"]),
        Route("/api/crossdomain.xml", crossdomain, methods=["GET"]),
        Route("/api/v1/login", login, methods=["POST"]),
        Route("/api/v1/refreshtoken", refresh_token, methods=["GET"]),
        Route("/api/v1/users", users_collection, methods=["GET", "POST"]),
        Route("/api/v1/users/{name}", user_item, methods=["GET", "DELETE"]),
        Route("/api/v1/routes", routes_collection, methods=["GET", "POST"]),
        Route("/api/v1/routes/{pattern:path}", route_item, methods=["GET", "DELETE"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        Route("/api/v1/streams", list_streams, methods=["GET"]),
        Route("/api/v1/streams/{path:path}", stream_item, methods=["GET", "DELETE"]),
        Route("/api/v1/cluster", cluster_nodes, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/api/v1/recordings", recordings_collection, methods=["GET", "POST", "DELETE"]),
        Route("/api/v1/recordings/{path:path}", recording_item, methods=["GET"]),
    ]
    routes += webrtc_routes()  # POST/PATCH/DELETE/OPTIONS on /streams/...: WHEP and WHIP signalling
    routes += console_routes()
    app = Starlette(routes=routes, exception_handlers={HubError: hub_error, HTTPException: http_error},
                    middleware=[Middleware(CountRequests), Middleware(TokenGate)])
    # `/api/v1/users/` is a missing user (404, as the reference), not a redirect.
    app.router.redirect_slashes = False
    app.state.front = front
    return app
