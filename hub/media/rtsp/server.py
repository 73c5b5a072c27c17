"""The sans-IO RTSP server connection every RTSP transport drives.

Bytes and `now` in, events and bytes out (h11's and aioquic's way): the glue
feeds what it reads with `receive_data(data, now)` (or, where the transport
frames requests itself, each one with `receive_message(data, now)`), calls
`next_event()` until NEED_DATA and writes `data_to_send()` after each call,
answers each request event with `respond(...)` (or `respond_error(...)`)
and writes what those return, and keeps one timer at `get_timer()` that
calls `handle_timer(now)` (then writes `data_to_send()` again).

What the engine owns, so no transport repeats it:

- Framing: requests, responses (ignored: we ask nothing) and `$` frames;
  or, for a transport that delimits messages itself (WSP's WRAP), one
  whole request per message, where a bad one is answered 400 in its turn
  and the connection goes on (its framing is intact).
- One request at a time: after a request event, the next one stays
  buffered (as bytes) until the app answered; `$` frames keep coming out.
  While a request is outstanding the unread bytes are bounded:
  `should_pause_reading` tells the glue to pause its transport, and past
  four times that bound `next_event` raises ProtocolError.
- Session and state, checked before an event comes out: a Session header
  that names no session of this connection, or a session-bound method
  without one, is answered 454 by the engine; a method the state table
  (`state.py`) or the connection's role does not allow now, 455; an
  unknown method, 405; a SETUP without a readable Transport header, 461.
  No event comes out for those.
- The transition: applied only when the app's answer is 2xx, so a refused
  request changes nothing. The session is created at the first 2xx SETUP
  or ANNOUNCE, with an id of 16 hex digits from the random source given.
  A 2xx TEARDOWN ends the session and the connection (`closing`).
- Response headers: CSeq echoed, Date (from the wall clock given), Server,
  Session with its timeout once a session exists, Content-Length, and
  Public on an OPTIONS answer unless the app gave one.
- The one place a HubError becomes a response: `respond_error`. A 401
  carries the challenges the app's `challenge` callback returns; a
  ProtocolError (400) closes the connection, the byte stream being out of
  sync or the peer broken. Every answer is one bytes object (`respond`,
  `respond_error`, each item of `data_to_send()`), so a transport that
  wraps each answer (WSP) can.
- Deadlines, from `now` arguments only: a request's head and body must
  arrive within `request_timeout` of its first byte (the clock starts when
  the engine is ready to read it), else 408 and `RequestTimeout`; a
  connection that receives nothing (no request, no `$` frame, no `touch`)
  for `session_timeout` gets `SessionExpired`.
- Hand-over: `take_buffered()` returns the bytes not yet returned as
  events; with the outstanding request's `raw` bytes before them, another
  process resumes the conversation exactly (the front hands a publisher to
  its shard after ANNOUNCE; the shard's engine is built `handed_over=True`
  and reads the ANNOUNCE again).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import formatdate
from typing import cast

from ... import errors
from ...errors import HubError, MethodNotAllowed, ProtocolError, SessionNotFound, UnsupportedTransport
from .events import EVENT_TYPES, RequestTimeout, RtspRequestEvent, SessionExpired, Setup, TimerEvent, split_uri
from .general import CSeq
from .headers import Headers
from .message import InterleavedFrame, RtspRequest, RtspResponse, parse_message, salvage_cseq
from .reader import NEED_DATA, Event, RtspReader, _NeedData
from .session import SessionHeader
from .state import (DEFAULT_TIMEOUT, RtspMethod, RtspRole, RtspServerSession, RtspState, new_session_id,
                    next_state_for, public_methods, role_after, to_method)
from .transport import Transport

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "MAX_PIPELINED", "RtspServerConnection", "SERVER"]

M = RtspMethod
SERVER = "ipchub-py"
DEFAULT_REQUEST_TIMEOUT = 10.0
#: Unread bytes while a request is outstanding before the glue should pause
#: reading (a whole request can be 16 KiB of head and 64 KiB of body).
MAX_PIPELINED = 96 * 1024
#: Methods that act on a session: without the Session header they are 454
#: once the connection has one (RFC 2326 §12.37).
NEEDS_SESSION = frozenset((M.PLAY, M.PAUSE, M.RECORD, M.TEARDOWN))
#: Headers the engine writes; the app passing one is a bug.
ENGINE_HEADERS = frozenset(("cseq", "session", "server", "date", "content-length"))

NextEvent = RtspRequestEvent | InterleavedFrame | _NeedData
HeaderItems = Iterable[tuple[str, str]] | Mapping[str, str]


class RtspServerConnection:
    """One RTSP connection's protocol state, from the server's side.

    `random_bytes(n)` draws session ids (`os.urandom`, or a seeded one in
    tests); `wall_clock()` gives the Date header's time (seconds since the
    epoch; None: no Date header); `challenge(exc)` the WWW-Authenticate
    values of a 401. Every other time is the `now` the glue passes (any
    monotonic clock, seconds).
    """

    def __init__(self, *, now: float, random_bytes: Callable[[int], bytes],
                 role: RtspRole = RtspRole.ANY, handed_over: bool = False,
                 session_timeout: float = DEFAULT_TIMEOUT,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 server: str = SERVER, wall_clock: Callable[[], float] | None = None,
                 challenge: Callable[[HubError], Sequence[str]] | None = None,
                 max_pipelined: int = MAX_PIPELINED) -> None:
        if handed_over:
            if role is RtspRole.PLAYER:
                raise ValueError("a connection handed over to publish is not a player's")
            role = RtspRole.PUBLISHER
        self.role = role
        self.handed_over = handed_over
        self.session_timeout = session_timeout
        self.request_timeout = request_timeout
        self.server = server
        self.max_pipelined = max_pipelined
        self._random_bytes = random_bytes
        self._wall_clock = wall_clock
        self._challenge = challenge
        self._reader = RtspReader()
        self._messages: deque[bytes] = deque()  # whole requests not read yet (receive_message)
        self._queued = 0  # their bytes
        self._session: RtspServerSession | None = None
        self._current: RtspRequestEvent | None = None
        self._outbox: list[bytes] = []
        self._error: ProtocolError | None = None
        self._closing = False
        self._now = now
        self._last_rx = now  # the idle deadline counts from here
        self._started: float | None = None  # first byte of the request being read

    # -- state -------------------------------------------------------------------
    @property
    def state(self) -> RtspState:
        return self._session.state if self._session is not None else RtspState.INIT

    @property
    def session_id(self) -> str | None:
        return self._session.id if self._session is not None else None

    @property
    def current(self) -> RtspRequestEvent | None:
        """The request event handed out and not answered yet."""
        return self._current

    @property
    def closing(self) -> bool:
        """Write `data_to_send()`, then close: the engine reads no more."""
        return self._closing

    @property
    def should_pause_reading(self) -> bool:
        """Pause the transport until a `respond` makes this False: a request
        is outstanding and the bytes queued behind it reached the bound."""
        return self._current is not None and self._unread >= self.max_pipelined

    @property
    def buffered(self) -> int:
        """Bytes received and not returned as events yet: at 0, the next
        byte received starts a message or a `$` frame (so a publisher's
        glue may take whole frames off a read itself)."""
        return self._unread

    @property
    def _unread(self) -> int:
        return self._reader.buffered + self._queued

    # -- input -------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Buffer bytes read from the peer; any byte counts as liveness."""
        if self._closing or not data:
            return
        self._reader.feed(data)
        if now > self._now:
            self._now = now
        self._last_rx = self._now  # the request deadline arms in next_event

    def receive_message(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """One whole request from a transport that delimits messages itself
        (WSP's WRAP). One that is not exactly one request is answered 400 in
        its turn; the connection goes on."""
        if self._closing:
            return
        self._messages.append(bytes(data))
        self._queued += len(data)
        self._now = self._last_rx = max(self._now, now)

    def touch(self, now: float) -> None:
        """Liveness seen outside this byte stream (RTCP over UDP)."""
        self._now = self._last_rx = max(self._now, now)

    def next_event(self) -> NextEvent:
        """The next request event or `$` frame, or NEED_DATA.

        NEED_DATA also while a request is outstanding and no frame is
        buffered: call again after `respond`. Raises ProtocolError when the
        peer's bytes do not parse (answer with `respond_error(None, exc)`);
        it raises again on every later call."""
        if self._error is not None:
            raise self._error
        try:
            if self._current is None and not self._closing and not self._messages:
                # The hot path (a publisher's RTP): one reader call, one check.
                ev = self._reader.next_event()
                if ev.__class__ is InterleavedFrame:
                    return ev
                if ev is NEED_DATA:  # the request deadline runs while a request is partly here
                    if not self._reader.in_message:
                        self._started = None
                    elif self._started is None:
                        self._started = self._now
                    return ev
                return self._next_event(ev)
            return self._next_event(None)
        except ProtocolError as exc:
            self._error = exc
            raise

    def _next_event(self, ev: Event | None) -> NextEvent:
        """`ev`: what the reader already gave, if anything."""
        reader = self._reader
        while not self._closing:
            if ev is None:
                if self._current is not None:
                    if self._unread > 4 * self.max_pipelined:
                        raise ProtocolError("too many bytes pipelined behind an unanswered request")
                    return cast("InterleavedFrame | _NeedData", reader.next_event(frames_only=True))
                if self._messages and not reader.buffered:
                    self._next_message()
                    continue
                ev = reader.next_event()
            if ev is NEED_DATA:
                self._arm_request_deadline()
                return NEED_DATA
            if isinstance(ev, InterleavedFrame):
                return ev
            if isinstance(ev, RtspRequest):
                event = self._admit(ev, reader.last_raw)
                if event is not None:
                    self._current = event
                    self._started = None
                    return event
            ev = None  # a response answers nothing we asked: dropped
        return NEED_DATA

    def _next_message(self) -> None:
        """Move the next whole message into the reader, or answer it 400."""
        data = self._messages.popleft()
        self._queued -= len(data)
        try:
            if not isinstance(parse_message(data), RtspRequest):
                raise ProtocolError("a response where a request was expected")
        except ProtocolError as exc:
            self._outbox.append(self._error_response(salvage_cseq(data), exc, close=False))
            return
        self._reader.feed(data)

    def _admit(self, req: RtspRequest, raw: bytes) -> RtspRequestEvent | None:
        """The event for `req`, or None when the engine answered it itself."""
        value = req.headers.get("CSeq")
        cseq = CSeq.parse(value).value if value is not None else None
        try:
            method = to_method(req.method)
            self._check_session(req, method)
            next_state_for(self.role, self.state, method)
            host, path, query = split_uri(req.uri)
            if method is M.SETUP:
                return Setup(req, cseq, host, path, query, raw, _transport_of(req))
            return EVENT_TYPES[method](req, cseq, host, path, query, raw)
        except HubError as exc:
            self._outbox.append(self._error_response(cseq, exc))
            return None

    def _check_session(self, req: RtspRequest, method: RtspMethod) -> None:
        value = req.headers.get("Session")
        session = self._session
        if value is not None:
            try:
                sid = SessionHeader.parse(value).id
            except ProtocolError:
                raise SessionNotFound("malformed Session header") from None
            if session is None or sid != session.id:
                raise SessionNotFound("no such session on this connection")
        elif session is not None and method in NEEDS_SESSION:
            raise SessionNotFound(f"{method.value} without the Session header")

    # -- answers -----------------------------------------------------------------
    def respond(self, event: RtspRequestEvent, status: int = 200, headers: HeaderItems | None = None,
                body: bytes = b"", reason: str = "") -> bytes:
        """The bytes answering `event`. A 2xx answer applies the state
        transition. Write `data_to_send()` first: answers the engine wrote
        itself to earlier requests go before this one."""
        if self._outbox:
            raise ValueError("write data_to_send() before answering the next request")
        self._answering(event)
        ok = 200 <= status < 300
        method = event.method
        if ok and self._session is None and method in (M.SETUP, M.ANNOUNCE):
            self._session = RtspServerSession(new_session_id(self._random_bytes), self._now,
                                              self.session_timeout)
        h = self._headers(event.cseq, session=True)
        extra = headers.items() if isinstance(headers, Mapping) else (headers or ())
        for name, value in extra:
            if name.lower() in ENGINE_HEADERS:
                raise ValueError(f"{name} is the engine's to write")
            h.add(name, value)
        if ok and method is M.OPTIONS and "Public" not in h:
            h.add("Public", ", ".join(public_methods(self.role)))
        answer = bytes(RtspResponse(status, reason, headers=h, body=body))
        if ok and self._session is not None:
            session = self._session
            session.state = next_state_for(self.role, session.state, method)
            self.role = role_after(self.role, session.state)
        if ok and method is M.TEARDOWN:
            self._session = None
            self._closing = True
        self._arm_request_deadline()
        return answer

    def respond_error(self, event: RtspRequestEvent | None, exc: HubError) -> bytes:
        """The bytes answering `event` (None: a request we could not read)
        with `exc`'s status. Nothing changes state; a ProtocolError closes."""
        if event is not None:
            self._answering(event)
        answer = self._error_response(event.cseq if event is not None else None, exc)
        self._arm_request_deadline()
        return answer

    def data_to_send(self) -> list[bytes]:
        """The answers the engine wrote itself (454, 455, 405, 461, 400 for
        a bad framed message, 408), one bytes object each, in order."""
        out = self._outbox
        if out:
            self._outbox = []
        return out

    def _answering(self, event: RtspRequestEvent) -> None:
        if event is not self._current:
            raise ValueError("only the request event being handled can be answered")
        self._current = None

    def _error_response(self, cseq: int | None, exc: HubError, close: bool = True) -> bytes:
        h = self._headers(cseq, session=not isinstance(exc, SessionNotFound))
        if exc.rtsp_status == 401 and self._challenge is not None:
            for value in self._challenge(exc):
                h.add("WWW-Authenticate", value)
        if isinstance(exc, MethodNotAllowed):
            h.add("Allow", ", ".join(public_methods(self.role)))
        if close and isinstance(exc, ProtocolError):
            self._closing = True
        return bytes(RtspResponse(exc.rtsp_status, headers=h))

    def _headers(self, cseq: int | None, session: bool) -> Headers:
        h = Headers()
        if cseq is not None:
            h.add("CSeq", str(cseq))
        if self._wall_clock is not None:
            h.add("Date", formatdate(self._wall_clock(), usegmt=True))
        h.add("Server", self.server)
        if session and self._session is not None:
            h.add("Session", self._session.header)
        return h

    # -- timers ------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """When `handle_timer` must next be called (None: never)."""
        if self._closing:
            return None
        deadline = self._last_rx + self.session_timeout
        if self._started is not None:
            deadline = min(deadline, self._started + self.request_timeout)
        return deadline

    def handle_timer(self, now: float) -> list[TimerEvent]:
        """Expire what is due at `now`; the events say why it closes."""
        self._now = max(self._now, now)
        if self._closing:
            return []
        if self._started is not None and now >= self._started + self.request_timeout:
            self._closing = True
            self._outbox.append(self._error_response(None, errors.RequestTimeout("request not complete in time")))
            return [RequestTimeout()]
        if now >= self._last_rx + self.session_timeout:
            self._closing = True
            return [SessionExpired(self.session_id)]
        return []

    def _arm_request_deadline(self) -> None:
        if self._current is None and not self._closing and self._reader.in_message:
            if self._started is None:
                self._started = self._now
        else:
            self._started = None

    # -- hand-over -----------------------------------------------------------------
    def take_buffered(self) -> bytes:
        """The bytes received and not yet returned as events, for another
        owner of the connection (put the outstanding request's `raw` first).
        This engine is done with the connection afterwards."""
        self._current = None
        self._closing = True
        self._started = None
        data = self._reader.take_buffered() + b"".join(self._messages)
        self._messages.clear()
        self._queued = 0
        return data


def unframed_error_response(exc: HubError, server: str = SERVER) -> bytes:
    """The answer to bytes that never became a request an engine could
    take (the shared port's door refusing an oversized or garbled head):
    `exc`'s RTSP status, and the connection closes after it."""
    h = Headers()
    h.add("Server", server)
    return bytes(RtspResponse(exc.rtsp_status, headers=h))


def _transport_of(req: RtspRequest) -> Transport:
    text = req.headers.get("Transport")
    if not text:
        raise UnsupportedTransport("SETUP without a Transport header")
    try:
        return Transport.parse(text)
    except ProtocolError as exc:
        raise UnsupportedTransport(f"unreadable Transport header: {exc.message}") from None
