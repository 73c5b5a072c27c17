"""RTSP over HTTP tunnelling (QuickTime scheme; VLC, FFmpeg `-rtsp_transport http`).

The GET half carries the server's side: after `GET_RESPONSE` the RTSP session
(hub.api.rtsp.connection) writes its responses and `$` data straight to the GET
connection. The POST half carries base64 requests, decoded incrementally and
fed to that session. It is never answered.

The two halves may land on different fronts: `hub.api.rtsp.rendezvous`.

Pairing: clients send the POST once the GET is answered (FFmpeg, VLC's
live555 and QuickTime all do), and the GET's session is registered, here and
in the rendezvous, before its answer goes out; so a POST is paired or
refused at once, with no wait. The cookie is the client's own text, maybe a
guessable one: a POST also has to come from the GET's address (IP), or it
is refused as one with an unknown cookie (404) and feeds nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from ...errors import HubError, NotFound, ProtocolError
from ...media.http1 import HttpRequestHead, parse_request_head
from ...media.rtsp.server import DEFAULT_REQUEST_TIMEOUT
from ...media.rtsp_tunnel import GET_RESPONSE, Base64Decoder, session_cookie, tunnel_role
from ..http_responses import http_error_response
from .connection import RtspConnection
from .rendezvous import Rendezvous, adopt, hand_over, rendezvous_name

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.rtsp.tunnel")

#: Bytes a half may carry into the hand-over (the rest stays in the kernel).
MAX_ALREADY = 256 * 1024
#: Seconds a GET half waits for its first POST (clients send it as soon as
#: the GET is answered), as long as a plain RTSP connection's first request
#: may take; else it is closed. It waited for the session timeout (60 s).
POST_WITHIN = DEFAULT_REQUEST_TIMEOUT
NO_SESSION = "no RTSP-over-HTTP session with that cookie"


# -- the tunnel ---------------------------------------------------------------------
class TunnelTransport:
    """The transport the tunnel's RTSP session sees: it writes to the GET,
    and its reading is the POST halves' (where the requests come in), so
    when the answers stop draining (the GET's `pause_writing`, forwarded
    by `RtspTunnelProtocol`) the session's pause reaches the sockets that
    feed it, as a plain RTSP connection pauses its own socket."""

    def __init__(self, get: asyncio.Transport) -> None:
        self.get = get
        self.posts: set[asyncio.Transport] = set()
        self.paused = False
        self.paired = False  # a POST half has come

    def attach(self, post: asyncio.Transport) -> None:
        self.posts.add(post)
        self.paired = True
        if self.paused:
            post.pause_reading()

    def detach(self, post: asyncio.Transport) -> None:
        self.posts.discard(post)

    def pause_reading(self) -> None:
        self.paused = True
        for t in (self.get, *self.posts):
            if not t.is_closing():
                t.pause_reading()

    def resume_reading(self) -> None:
        self.paused = False
        for t in (self.get, *self.posts):
            if not t.is_closing():
                t.resume_reading()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.get.write(data)

    def is_closing(self) -> bool:
        return self.get.is_closing()

    def close(self) -> None:
        for t in (self.get, *self.posts):
            t.close()

    def abort(self) -> None:
        for t in (self.get, *self.posts):
            t.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.get.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self.get.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.get.set_write_buffer_limits(high, low)


class TunnelSession:
    """The GET half: owns the RTSP session; POST halves feed it."""

    def __init__(self, front: FrontContext, cookie: str, transport: asyncio.Transport) -> None:
        self.front = front
        self.cookie = cookie
        self.conn = RtspConnection(front, kind="rtsp-http")
        self.transport = transport
        self.halves = TunnelTransport(transport)
        self.peer_host = peer_host(transport)
        self.rendezvous: Rendezvous | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._post_timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        sessions[self.cookie] = self
        name = rendezvous_name(self.front.args.instance, "tunnel", self.cookie)
        try:
            self.rendezvous = Rendezvous(name, self._adopt_post)
        except OSError as e:  # the cookie is in use elsewhere
            raise ProtocolError(f"x-sessioncookie already in use ({e})") from None
        self.transport.write(GET_RESPONSE)
        self.conn.connection_made(cast(asyncio.Transport, self.halves))
        self._post_timer = asyncio.get_running_loop().call_later(POST_WITHIN, self._no_post)

    def _no_post(self) -> None:
        self._post_timer = None
        if not self.halves.paired and not self.transport.is_closing():
            log.info("tunnel %s: no POST half within %.0f s; closing its GET", self.cookie, POST_WITHIN)
            self.transport.close()

    def admits(self, post: asyncio.BaseTransport) -> bool:
        """Whether a POST half comes from where the GET did."""
        return peer_host(post) == self.peer_host

    def _adopt_post(self, fd: int, already_read: bytes) -> None:
        log.info("tunnel %s: POST handed over by another front", self.cookie)
        task = asyncio.get_running_loop().create_task(
            adopt(fd, lambda: TunnelPostProtocol(self.front, self), already_read))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self, exc: Exception | None) -> None:
        if self._post_timer is not None:
            self._post_timer.cancel()
            self._post_timer = None
        if sessions.get(self.cookie) is self:
            del sessions[self.cookie]
        if self.rendezvous is not None:
            self.rendezvous.close()
        for t in self._tasks:
            t.cancel()
        for post in list(self.halves.posts):  # they feed nothing any more
            post.close()
        self.conn.connection_lost(exc)


#: This process's GET halves by session cookie.
sessions: dict[str, TunnelSession] = {}


def peer_host(transport: asyncio.BaseTransport) -> str | None:
    """The peer's IP address (an IPv4-mapped IPv6 one as IPv4)."""
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return None
    host = str(peer[0])
    return host[7:] if host.startswith("::ffff:") else host


class TunnelPostProtocol(asyncio.Protocol):
    """A POST half already paired (locally, or handed over to this front)."""

    def __init__(self, front: FrontContext, session: TunnelSession) -> None:
        self.front = front
        self.session = session
        self.decoder = Base64Decoder()
        self.transport: asyncio.Transport | None = None
        self.attached = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.session.admits(transport):
            log.info("tunnel: refused a POST from %s for a GET from %s",
                     peer_host(transport), self.session.peer_host)
            _refuse(self.transport, NotFound(NO_SESSION))  # type: ignore[arg-type]
            return
        self.attached = True
        self.session.halves.attach(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if not self.attached:
            return  # refused: its bytes feed nothing
        conn = self.session.conn
        try:
            decoded = self.decoder.feed(data)
        except ProtocolError as e:
            log.info("closing tunnel POST: %s", e)
            assert self.transport is not None
            self.transport.close()
            return
        if decoded and not self.session.transport.is_closing():
            conn.data_received(decoded)

    def connection_lost(self, exc: Exception | None) -> None:
        # QuickTime may close the POST after each request and open another;
        # the session lives as long as the GET.
        if self.attached and self.transport is not None:
            self.session.halves.detach(self.transport)


class RtspTunnelProtocol(asyncio.Protocol):
    """Takes a tunnel half from the sniffing door and serves or pairs it."""

    def __init__(self, front: FrontContext) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._session: TunnelSession | None = None
        self._post: TunnelPostProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._post is not None:
            self._post.data_received(data)
            return
        if self._session is not None:
            return  # nothing is expected on the GET once it is answered
        self._buf += data
        try:
            parsed = parse_request_head(self._buf)
            if parsed is None:
                return
            head, used = parsed
            del self._buf[:used]
            role = tunnel_role(head)
            cookie = session_cookie(head)
        except ProtocolError:
            self._fail(ProtocolError("bad RTSP-over-HTTP request"))
            return
        if role == "get":
            self._start_get(head, cookie)
        elif role == "post":
            self._pair_post(cookie)
        else:
            self._fail(ProtocolError("bad RTSP-over-HTTP request"))

    def _start_get(self, head: HttpRequestHead, cookie: str) -> None:
        assert self.transport is not None
        if cookie in sessions:
            self._fail(ProtocolError("bad RTSP-over-HTTP request"))
            return
        session = TunnelSession(self.front, cookie, self.transport)
        try:
            session.start()
        except ProtocolError:
            sessions.pop(cookie, None)
            self._fail(ProtocolError("bad RTSP-over-HTTP request"))
            return
        self._session = session

    def _pair_post(self, cookie: str) -> None:
        """Local GET: feed it. GET on another front: hand this socket there.
        Neither: 404, at once (the GET is registered before it is answered)."""
        assert self.transport is not None
        local = sessions.get(cookie)
        if local is not None:
            self._post = TunnelPostProtocol(self.front, local)
            self._post.connection_made(self.transport)
            data = bytes(self._buf)
            self._buf.clear()
            if data:
                self._post.data_received(data)
            return
        if len(self._buf) <= MAX_ALREADY:
            name = rendezvous_name(self.front.args.instance, "tunnel", cookie)
            self.transport.pause_reading()
            if hand_over(name, self.transport, bytes(self._buf)):
                return
            self.transport.resume_reading()
        self._fail(NotFound(NO_SESSION))

    def pause_writing(self) -> None:
        if self._session is not None:  # the GET: its session's answers queue up
            self._session.conn.pause_writing()

    def resume_writing(self) -> None:
        if self._session is not None:
            self._session.conn.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._post is not None:
            self._post.connection_lost(exc)
        if self._session is not None:
            self._session.close(exc)

    def _fail(self, exc: HubError) -> None:
        if self.transport is not None:
            _refuse(self.transport, exc)


def _refuse(transport: asyncio.Transport, exc: HubError) -> None:
    """A half's one error answer: `exc` as an HTTP response, then close."""
    if not transport.is_closing():
        transport.write(http_error_response(exc))
        transport.close()

