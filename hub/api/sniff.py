"""The door of the shared port: tell RTSP from HTTP by the first bytes.

uvicorn's `http=` option takes this class (import path
`hub.api.sniff:SniffProtocol`). It reads the first request line, then moves
the live transport to the protocol that serves it, replaying what it read:

- an RTSP request line            -> the RTSP connection protocol;
- HTTP on `/streams/...`, `/ws/...` -> the raw media protocol (frames are
  written straight to the transport, never through ASGI);
- any other HTTP                  -> uvicorn's HttpToolsProtocol and the
  Starlette app, on the same connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import ProtocolError
from ..media.http1 import HeadTooLarge, parse_request_head, sniff
from ..media.rtsp_tunnel import tunnel_role
from .http_responses import error_body, raw_http_response
from .play.http import HEAD_TIMEOUT, MediaHttpProtocol
from .rtsp.connection import RtspConnection
from .rtsp.tunnel import RtspTunnelProtocol

if TYPE_CHECKING:
    from .context import FrontContext

log = logging.getLogger("hub.api.sniff")

SNIFF_TIMEOUT = 10.0
MEDIA_PREFIXES = (b"/streams/", b"/ws/")


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class SniffProtocol(asyncio.Protocol):
    """Constructed by uvicorn with the same arguments as its own protocols."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop or asyncio.get_event_loop()
        self.front: FrontContext = config.app.state.front
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        set_nodelay(transport)
        self._timer = self._loop.call_later(SNIFF_TIMEOUT, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buf += data
        try:
            kind, target = sniff(self._buf)
        except HeadTooLarge:
            self._refuse(431, "Request Header Fields Too Large", rtsp=self._looks_rtsp())
            return
        tunnel = False
        if kind == "http":
            # Hold the connection until its whole first head is here, so the
            # header-block cap applies to every HTTP request we hand on.
            try:
                parsed = parse_request_head(self._buf)
                if parsed is None:
                    return
                tunnel = tunnel_role(parsed[0]) is not None
            except HeadTooLarge:
                self._refuse(431, "Request Header Fields Too Large", rtsp=False)
                return
            except ProtocolError:
                self._refuse(400, "Bad Request", rtsp=False)
                return
        if kind == "need_data":
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if kind == "garbage":
            self._refuse(400, "Bad Request", rtsp=self._looks_rtsp())
            return
        if kind == "rtsp":
            self._switch(RtspConnection(self.front))
        elif tunnel:
            # RTSP over HTTP (either half, on any path): hub.api.rtsp.tunnel.
            self._switch(RtspTunnelProtocol(self.front))
        elif target.startswith(MEDIA_PREFIXES):
            self._switch(MediaHttpProtocol(self.front))
        else:
            self._switch(self._uvicorn_protocol())

    def _uvicorn_protocol(self) -> asyncio.Protocol:
        return HubHttpProtocol(config=self._config, server_state=self._server_state,
                               app_state=self._app_state, _loop=self._loop, front=self.front)

    def _switch(self, proto: asyncio.Protocol) -> None:
        assert self._transport is not None
        data = bytes(self._buf)
        self._buf.clear()
        self._transport.set_protocol(proto)
        proto.connection_made(self._transport)
        if not self._transport.is_closing():
            proto.data_received(data)

    def _looks_rtsp(self) -> bool:
        line = bytes(self._buf[:64]).split(b"\n", 1)[0]
        return b"RTSP/" in line or line.split(b" ", 1)[0] in (b"DESCRIBE", b"ANNOUNCE", b"SETUP", b"RECORD")

    def _refuse(self, status: int, reason: str, rtsp: bool) -> None:
        assert self._transport is not None
        if rtsp:
            self._transport.write(b"RTSP/1.0 400 Bad Request\r\n\r\n")
        elif self._buf[:1].isupper():
            self._transport.write(raw_http_response(status, reason, error_body(reason)))
        self._transport.close()

    # uvicorn calls shutdown() on connections it tracks; we are not tracked
    # while sniffing (a few ms), so nothing else is needed here.


class HubHttpProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol, watching each new request on a kept-alive
    connection: a browser that loaded the page may send its media request on
    the same connection, and that must reach the raw media protocol too.
    Every request's head must be whole within HEAD_TIMEOUT of its first byte,
    the second one of a kept-alive connection as much as the first (uvicorn
    times only the idle gap between requests)."""

    def __init__(self, *args: Any, front: FrontContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._front = front
        self._in_message = False
        self._head_timer: asyncio.TimerHandle | None = None

    def on_message_begin(self) -> None:
        self._in_message = True
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        log.info("closing an HTTP connection: request head not whole after %.0f s", HEAD_TIMEOUT)
        self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        idle = not self._in_message and (self.cycle is None or self.cycle.response_complete) \
            and not self.pipeline
        if idle and data.startswith((b"GET /streams/", b"GET /ws/", b"HEAD /streams/")):
            self._unset_keepalive_if_required()
            self._cancel_head_timer()
            self.connections.discard(self)
            proto = MediaHttpProtocol(self._front)
            self.transport.set_protocol(proto)
            proto.connection_made(self.transport)
            proto.data_received(data)
            return
        super().data_received(data)
