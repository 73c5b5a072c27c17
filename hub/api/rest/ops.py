"""What an operator's tools ask: `/metrics`, `/healthz`, `/readyz`, and the
count of API requests by route and status.

All three are answered by the supervisor over IPC (as `/api/v1/server`):
the metrics of the whole tree, and whether it answers and is ready. They
are outside `/api/`, so the API's token gate does not apply: `/healthz` and
`/readyz` need no token, `/metrics` its own (`metrics.token`), or without
one a loopback client.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import Forbidden, HubError, NotReady, ServiceUnavailable, Unauthorized
from ...ipc import messages as M
from ..access import token_from
from .json import JsonResponse

if TYPE_CHECKING:
    from ..context import FrontContext

#: How long health and readiness wait for the supervisor: a probe must not hang.
PROBE_TIMEOUT = 1.0
#: A scrape waits this long (Prometheus' own scrape timeout is 10 s by default).
METRICS_TIMEOUT = 8.0


def _front(request: Request) -> FrontContext:
    front: FrontContext = request.app.state.front
    return front


def _is_loopback(host: str | None) -> bool:
    """127.0.0.0/8 or ::1; an IPv4-mapped address (`::ffff:127.0.0.1`, how a
    dual-stack `[::]` socket shows an IPv4 client) as the address it carries."""
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def check_metrics_access(front: FrontContext, request: Request) -> None:
    """`metrics.token` as `Authorization: Bearer` or `?token=`; without a
    configured token, loopback clients only."""
    expected = front.config.metrics.token
    if expected is None:
        if not _is_loopback(request.client.host if request.client else None):
            raise Forbidden("/metrics answers loopback clients only unless metrics.token is set")
        return
    given = token_from(request.query_params, request.headers.get("authorization"))
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid metrics token is required")


async def metrics(request: Request) -> Response:
    front = _front(request)
    check_metrics_access(front, request)
    reply = await front.supervisor_request(M.SCRAPE({}), timeout=METRICS_TIMEOUT)
    return Response(bytes(reply["body"]), media_type=str(reply["type"]))


async def healthz(request: Request) -> Response:
    """200 while the process tree answers (this front asks the supervisor)."""
    try:
        reply = await _front(request).supervisor_request(M.HEALTH({}), timeout=PROBE_TIMEOUT)
    except HubError:
        raise ServiceUnavailable("the process tree does not answer") from None
    return JsonResponse(reply)


async def readyz(request: Request) -> Response:
    """200 when every child is up and serving, this front listens with its
    stores loaded, and the tree is not draining; 503 naming what is not."""
    front = _front(request)
    try:
        reply = await front.supervisor_request(M.READY({}), timeout=PROBE_TIMEOUT)
    except HubError:
        raise NotReady("not ready: the process tree does not answer") from None
    why = [name for name, ok in reply.get("children", {}).items() if not ok]
    if reply.get("draining") or front.draining:
        why.append("draining")
    if not front.listening and not front.draining:
        why.append(f"{front.args.name} not listening")
    if front.users is None:
        why.append(f"{front.args.name} has no stores")
    if why:
        raise NotReady("not ready: " + ", ".join(why))
    return JsonResponse({**reply, "ready": True})


class CountRequests:
    """Counts every request the Starlette app answers by route template and
    status (`ipchub_api_requests_total`); unknown paths are `other`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        route = route_of(scope)
        try:
            await self.app(scope, receive, send_counted)
        finally:
            front: FrontContext = scope["app"].state.front
            front.counters.api_requests[(route, status)] += 1


def route_of(scope: Scope) -> str:
    """The template of the route a request goes to (`/api/v1/users/{name}`)."""
    for route in scope["app"].router.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return str(getattr(route, "path", "") or "other")
    return "other"
