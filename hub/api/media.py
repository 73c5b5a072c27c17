"""Raw media HTTP/WebSocket protocol for `/streams/...` and `/ws/...`.

Requests are decided here (crossdomain, auth, 404) and, once a player is
attached, its frames are written straight to the transport: per-frame ASGI
calls cost 2-3x the kernel's copy (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import HubError, NotFound, ProtocolError
from ..media.http1 import HttpRequestHead, parse_request_head
from .responses import CROSSDOMAIN_XML, error_body, raw_http_response

if TYPE_CHECKING:
    from .front import FrontContext

log = logging.getLogger("hub.api.media")

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}

_TS_RE = re.compile(r"^(?P<path>/.+)/(?P<seq>[^/]+)\.ts$")


@dataclass(frozen=True)
class MediaRequest:
    """What a media URL asks for: a stream path and a format."""

    kind: str  # "flv", "m3u8", "ts", "ws" (RTSP/WSP over WebSocket)
    path: str
    segment: int = -1


def classify(head: HttpRequestHead) -> MediaRequest:
    """Map a media URL to (kind, stream path); NotFound for anything else."""
    p = head.path
    if p.startswith("/ws/"):
        if p.endswith(".flv"):
            return MediaRequest("flv", p[3:-4])
        raise NotFound("404 page not found")
    rest = p[len("/streams"):]
    if rest.endswith(".flv") and len(rest) > 5:
        return MediaRequest("flv", rest[:-4])
    if rest.endswith(".m3u8") and len(rest) > 6:
        return MediaRequest("m3u8", rest[:-5])
    m = _TS_RE.match(rest)
    if m:
        if not m.group("seq").isdigit():
            raise ProtocolError("Path illegal")
        return MediaRequest("ts", m.group("path"), int(m.group("seq")))
    if head.is_websocket and len(rest) > 1:
        return MediaRequest("ws", rest)
    raise NotFound("404 page not found")


class MediaHttpProtocol(asyncio.Protocol):
    def __init__(self, front: FrontContext) -> None:
        self.front = front
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._task is not None:
            return  # a request is being served; media clients send nothing more
        self._buf += data
        try:
            parsed = parse_request_head(self._buf)
        except ProtocolError as e:
            self._respond_error(e)
            return
        if parsed is None:
            return
        head, used = parsed
        del self._buf[:used]
        self._task = asyncio.get_running_loop().create_task(self._serve(head))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _serve(self, head: HttpRequestHead) -> None:
        try:
            if head.path == "/streams/crossdomain.xml":
                self._write_close(raw_http_response(200, "OK", CROSSDOMAIN_XML, "application/xml"))
                return
            if head.method not in ("GET", "HEAD"):
                raise NotFound("404 page not found")
            req = classify(head)
            await self.front.open_stream(req.path)
            # Players of each format are served by the issues that build them.
            raise NotFound("404 page not found")
        except HubError as e:
            self._respond_error(e)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("media request %s failed", head.target)
            self._respond_error(HubError("internal error"))

    def _respond_error(self, e: HubError) -> None:
        status = e.http_status
        self._write_close(raw_http_response(status, _REASONS.get(status, "Error"), error_body(e.message)))

    def _write_close(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            self._transport.close()
