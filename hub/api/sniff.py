"""The door of the shared port: tell RTSP from HTTP by the first bytes.

uvicorn's `http=` option takes this class (import path
`hub.api.sniff:SniffProtocol`). It reads the first request line, then moves
the live transport to the protocol that serves it, replaying what it read:

- an RTSP request line            -> the RTSP connection protocol;
- HTTP on `/streams/...`, `/ws/...` -> the raw media protocol (frames are
  written straight to the transport, never through ASGI);
- any other HTTP                  -> uvicorn's HttpToolsProtocol and the
  Starlette app, on the same connection;
- a first byte 0x03 (RTMP's C0)   -> the RTMP protocol (no request line
  starts with it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import HubError, PayloadTooLarge, ProtocolError
from ..ipc.handoff import set_nodelay
from ..media.http1 import MAX_BODY, MAX_HEAD, MAX_HEADERS, MAX_LINE, HeadTooLarge, parse_request_head, sniff
from ..media.rtsp.server import unframed_error_response
from ..media.rtsp_tunnel import tunnel_role
from .http_responses import ABORT_EXTENSION, http_error_response
from .play.consumer import STUCK_SECONDS
from .play.http import HEAD_TIMEOUT, MediaHttpProtocol
from .rtmp.connection import RtmpFrontProtocol
from .rtsp.connection import RtspConnection
from .rtsp.tunnel import RtspTunnelProtocol

if TYPE_CHECKING:
    from .context import FrontContext

log = logging.getLogger("hub.api.sniff")

#: Methods only RTSP has (OPTIONS and GET/POST are both protocols').
RTSP_ONLY_METHODS = frozenset((b"DESCRIBE", b"ANNOUNCE", b"SETUP", b"PLAY", b"PAUSE", b"RECORD",
                               b"TEARDOWN", b"GET_PARAMETER", b"SET_PARAMETER"))
#: How far a refused head is searched for its first line's end.
MAX_VERSION_SCAN = 8192
SNIFF_TIMEOUT = 10.0
MEDIA_PREFIXES = (b"/streams/", b"/ws/")
#: RTMP's handshake starts with its version, 3.
RTMP_C0 = 3
#: A request body must be whole this long after its head.
BODY_TIMEOUT = 10.0
#: After refusing a request, what the client still sends is read and dropped
#: this long before the connection closes, so that the refusal reaches it
#: (closing with unread bytes would reset the connection and lose it).
LINGER = 2.0
#: Requests a kept-alive client may have waiting behind the one being
#: answered (pipelined); one more and it is dropped, those waiting unrun.
MAX_PIPELINED = 16


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
        self._opened_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        set_nodelay(transport)
        self._opened_at = self._loop.time()
        self._timer = self._loop.call_later(SNIFF_TIMEOUT, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buf += data
        if self._buf[0] == RTMP_C0:  # no request line starts with it; the handshake has its own deadline
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._switch(RtmpFrontProtocol(self.front))
            return
        try:
            kind, target = sniff(self._buf)
        except HeadTooLarge as e:
            self._refuse(e, rtsp=self._looks_rtsp())
            return
        tunnel = False
        method = ""
        if kind == "http":
            # Hold the connection until its whole first head is here, so the
            # header-block cap applies to every HTTP request we hand on.
            try:
                parsed = parse_request_head(self._buf)
                if parsed is None:
                    return
                tunnel = tunnel_role(parsed[0]) is not None
                method = parsed[0].method
            except ProtocolError as e:  # HeadTooLarge (431) included
                self._refuse(e, rtsp=False)
                return
        if kind == "need_data":
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if kind == "garbage":
            self._refuse(ProtocolError("neither an RTSP nor an HTTP request"), rtsp=self._looks_rtsp())
            return
        if kind == "rtsp":
            # The first request's deadline still counts from the first byte
            # (the engine gives every later request the same 10 s).
            self._switch(RtspConnection(self.front, opened_at=self._opened_at))
        elif tunnel:
            # RTSP over HTTP (either half, on any path): hub.api.rtsp.tunnel.
            self._switch(RtspTunnelProtocol(self.front))
        elif target.startswith(MEDIA_PREFIXES) and method in ("GET", "HEAD"):
            # Other methods on /streams/... (WHEP/WHIP signalling) are the app's.
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
        """Whether to refuse in RTSP: by the method when only RTSP has it,
        else by a whole first line's version (a path may say "RTSP/")."""
        method = bytes(self._buf[:16]).split(b" ", 1)[0]
        if method in RTSP_ONLY_METHODS:
            return True
        line = bytes(self._buf[:MAX_VERSION_SCAN]).split(b"\n", 1)[0].rstrip(b"\r")
        return line.rsplit(b" ", 1)[-1].startswith(b"RTSP/")

    def _refuse(self, exc: HubError, rtsp: bool) -> None:
        """Answer in the protocol the bytes look like (nothing for binary)."""
        assert self._transport is not None
        if rtsp:
            self._transport.write(unframed_error_response(exc))
        elif self._buf[:1].isupper():
            self._transport.write(http_error_response(exc))
        self._transport.close()

    # uvicorn calls shutdown() on connections it tracks; we are not tracked
    # while sniffing (a few ms), so nothing else is needed here.


class HubHttpProtocol(HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol, watching each new request on a kept-alive
    connection: a browser that loaded the page may send its media request on
    the same connection, and that must reach the raw media protocol too.

    It also bounds every request, whatever the app does with it: the head
    must be whole within HEAD_TIMEOUT of its first byte (the second request
    of a kept-alive connection as much as the first: uvicorn times only the
    idle gap), the body within BODY_TIMEOUT of the head, and a body over
    MAX_BODY is refused with 413 by its Content-Length before the app starts,
    or as soon as a chunked one passes the cap, never buffered. Every head
    has the sniffer's caps (MAX_LINE of target, MAX_HEADERS, MAX_HEAD), else
    431: the sniffer sees only a connection's first, and httptools has none.
    At most MAX_PIPELINED requests wait behind the one being answered. A
    client whose answers queue up (uvicorn then stops reading it) and do not
    drain at all for STUCK_SECONDS is dropped."""

    def __init__(self, *args: Any, front: FrontContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._front = front
        self._in_message = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_bytes = 0
        self._refused = False
        self._stuck_timer: asyncio.TimerHandle | None = None
        self._stuck_queued = 0
        self._in_head = False
        self._begun = 0  # heads begun: one read on into the same head, or a new one
        self._target_bytes = 0
        self._headers = 0
        self._header_bytes = 0
        self._head_reads = 0  # bytes of reads wholly inside the head

    def on_message_begin(self) -> None:
        self._in_message = True
        self._in_head = True
        self._begun += 1
        self._body_bytes = self._target_bytes = self._headers = self._header_bytes = self._head_reads = 0
        self._cancel_timers()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._too_slow, "request head")
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._target_bytes += len(url)
        if self._target_bytes > MAX_LINE:
            self._refuse(HeadTooLarge("request line too long"))
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._headers += 1
        self._header_bytes += len(name) + len(value)
        if self._headers > MAX_HEADERS or self._header_bytes > MAX_HEAD:
            self._refuse(HeadTooLarge("too many headers" if self._headers > MAX_HEADERS
                                      else "header block too large"))
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_timers()
        if self._refused:
            return  # a refusal earlier in the same read: nothing after it starts
        if len(self.pipeline) >= MAX_PIPELINED:
            self._refuse(ProtocolError(f"more than {MAX_PIPELINED} pipelined requests waiting"))
            return
        declared = next((v for k, v in self.headers if k == b"content-length"), b"")
        if declared.strip().isdigit() and int(declared) > MAX_BODY:
            self._refuse(PayloadTooLarge(f"request body larger than {MAX_BODY} bytes"))
            return
        self._body_timer = self.loop.call_later(BODY_TIMEOUT, self._too_slow, "request body")
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            abort = functools.partial(self._abort_response, cycle)
            self.scope.setdefault("extensions", {})[ABORT_EXTENSION] = {"abort": abort}

    def _abort_response(self, cycle: Any) -> None:
        """End `cycle`'s response short (`ABORT_EXTENSION`): the app reads a
        disconnect and writes nothing more, and the connection closes after
        what was sent, so the client sees fewer bytes than promised."""
        if cycle.response_complete:
            return
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(body)
        if self._body_bytes > MAX_BODY:
            self._refuse(PayloadTooLarge(f"request body larger than {MAX_BODY} bytes"))
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._cancel_timers()
        if self._refused:
            return
        super().on_message_complete()

    def _too_slow(self, what: str) -> None:
        self._head_timer = self._body_timer = None
        log.info("closing an HTTP connection: %s not whole in time", what)
        self._stop_cycle()
        self.transport.close()

    def _stop_cycle(self) -> bool:
        """End the app's view of the current request (it reads a disconnect,
        writes nothing more); False if its response has already begun."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        if cycle.response_started:
            return False
        cycle.disconnected = True
        cycle.message_event.set()
        return True

    def _refuse(self, err: HubError) -> None:
        """Answer `err` in place of the app, then linger: read and drop what
        the client still sends for LINGER seconds, and close."""
        self._refused = True
        self._cancel_timers()
        log.info("refusing an HTTP request: %s", err.message)
        if not self._stop_cycle() or self.pipeline:
            self.transport.abort()  # an earlier response is still going out
            return
        self._unset_keepalive_if_required()
        self.transport.write(http_error_response(err, close=True))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER, self.transport.close)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def pause_writing(self) -> None:
        # uvicorn stops reading a client whose answers queue up; one that
        # makes no progress draining them in STUCK_SECONDS is dropped (a slow
        # one that drains, however slowly, is not).
        super().pause_writing()
        if self._stuck_timer is None:
            self._stuck_queued = self.transport.get_write_buffer_size()
            self._stuck_timer = self.loop.call_later(STUCK_SECONDS, self._stuck)

    def resume_writing(self) -> None:
        if self._stuck_timer is not None:
            self._stuck_timer.cancel()
            self._stuck_timer = None
        super().resume_writing()

    def _stuck(self) -> None:
        queued = self.transport.get_write_buffer_size()
        if queued < self._stuck_queued:  # slow, but it drains
            self._stuck_queued = queued
            self._stuck_timer = self.loop.call_later(STUCK_SECONDS, self._stuck)
            return
        self._stuck_timer = None
        log.info("dropping an HTTP client that has not read its answers for %.0f s", STUCK_SECONDS)
        self._stop_cycle()
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._stuck_timer is not None:
            self._stuck_timer.cancel()
            self._stuck_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: dropped
        idle = not self._in_message and (self.cycle is None or self.cycle.response_complete) \
            and not self.pipeline
        if idle and data.startswith((b"GET /streams/", b"GET /ws/", b"HEAD /streams/")):
            self._unset_keepalive_if_required()
            self._cancel_timers()
            self.connections.discard(self)
            proto = MediaHttpProtocol(self._front)
            self.transport.set_protocol(proto)
            proto.connection_made(self.transport)
            proto.data_received(data)
            return
        in_head, begun = self._in_head, self._begun
        super().data_received(data)
        if in_head and self._in_head and begun == self._begun and not self._refused:
            # A read that began and ended inside one head: httptools joins a
            # header's pieces unseen until it is whole, so count them here.
            self._head_reads += len(data)
            if self._head_reads > MAX_HEAD:
                self._refuse(HeadTooLarge("header block too large"))
