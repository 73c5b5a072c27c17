"""The asyncio glue of the RTSP server engine, one copy for both its users.

`RtspServerProtocol` drives one `hub.media.rtsp.server.RtspServerConnection`
(uvicorn's h11 protocol is the model): it feeds the bytes read, writes the
engine's answers, hands each request event to the subclass, passes `$`
frames to per-channel sinks, pauses reading while the engine says so or
while the client does not read our answers (the transport's write buffer
is over its high-water mark: it cannot make us queue answers without
bound), and keeps one loop timer at the engine's next deadline. It chooses no status
and parses nothing: a handler answers with `reply` or raises a HubError,
which becomes an answer in the engine (`respond_error`) and nowhere else.

Its two users are in different process packages, which never import each
other, so it lives at the root (like `placement.py`): the fronts' player
connections (`hub.api.rtsp.connection`, under plain TCP, WSP, RTSP over
WebSocket and the HTTP tunnel) and the shards' publisher connections
(`hub.shard.publish`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from .errors import HubError, ProtocolError
from .logs import loggable_target
from .media.rtsp import NEED_DATA, InterleavedFrame
from .media.rtsp.events import RtspRequestEvent, TimerEvent
from .media.rtsp.server import HeaderItems, RtspServerConnection
from .media.rtsp.state import RtspRole

__all__ = ["FrameSink", "RtspServerProtocol"]

#: Takes one `$` frame's payload (RTP or RTCP of one channel).
FrameSink = Callable[[bytes | bytearray | memoryview], None]
#: What a request handler returns: None once it answered, or the work that will.
Pending = Coroutine[Any, Any, None] | None
#: Requests handled per loop turn; a client that pipelines more waits for
#: the next turn (reading paused meanwhile), so it cannot hold the loop.
MAX_REQUESTS_PER_TURN = 16


class RtspServerProtocol(asyncio.Protocol):
    """One RTSP server connection on an asyncio transport (or an adapter
    with the same surface: write, close, is_closing, pause/resume_reading).

    Subclasses implement `on_request`; they may set `channels` (256 sinks,
    by `$` channel; replaced in place only) and override `before_timer`,
    `on_expired` and `close` (calling this one)."""

    log = logging.getLogger("hub.rtsp")

    def __init__(self, *, role: RtspRole = RtspRole.ANY, handed_over: bool = False,
                 session_timeout: float, clock: Callable[[], float] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 wall_clock: Callable[[], float] | None = time.time,
                 challenge: Callable[[HubError], Sequence[str]] | None = None,
                 opened_at: float | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self.clock = clock if clock is not None else self._loop.time
        self.engine = RtspServerConnection(
            now=self.clock() if opened_at is None else opened_at, random_bytes=random_bytes, role=role,
            handed_over=handed_over, session_timeout=session_timeout, wall_clock=wall_clock,
            challenge=challenge)
        #: Bytes already read when the connection was opened (`opened_at`,
        #: the sniffer's first byte): their request's deadline counts from then.
        self._replay_at = opened_at
        self.transport: asyncio.Transport | None = None
        self.channels: list[FrameSink | None] | None = None
        self.closed = False
        self._paused = False
        self._write_paused = False
        self._next_turn: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- what subclasses write -------------------------------------------------------
    def on_request(self, event: RtspRequestEvent) -> Pending:
        """Answer `event` (`reply`, or raise a HubError) now, or return a
        coroutine that will."""
        raise NotImplementedError

    def before_timer(self, now: float) -> None:
        """Called when the timer fires, before the engine looks at `now`:
        the place to `engine.touch(now)` for traffic seen elsewhere (UDP)."""

    def on_expired(self, event: TimerEvent) -> None:
        self.log.info("closing an RTSP connection: %s", type(event).__name__)

    def reply(self, event: RtspRequestEvent, status: int = 200, headers: HeaderItems | None = None,
              body: bytes = b"") -> None:
        self._write(self.engine.respond(event, status, headers, body))

    def refuse(self, event: RtspRequestEvent | None, exc: HubError) -> None:
        """Answer `event` with `exc` (once: a handler that already answered
        and then failed only logs)."""
        level = logging.WARNING if exc.rtsp_status >= 500 else logging.INFO
        what = f"{event.method.value} {event.uri[:120]}" if event is not None else "request"
        self.log.log(level, "%s -> %d %s", what, exc.rtsp_status, exc.message)
        if event is None or self.engine.current is event:
            self._write(self.engine.respond_error(event, exc))

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (and our adapters) are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self._settle()

    def data_received(self, data: bytes) -> None:
        now = self._replay_at
        if now is None:
            now = self.clock()
        else:
            self._replay_at = None
        self.engine.receive_data(data, now)
        self._drain()

    def receive_message(self, data: bytes) -> None:
        """One whole request from a transport that frames them (WSP)."""
        self.engine.receive_message(data, self.clock())
        self._drain()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._settle()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._drain()  # requests that waited in the engine meanwhile

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._next_turn is not None:
            self._next_turn.cancel()
            self._next_turn = None
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        t = self.transport
        if t is not None and not t.is_closing():
            t.close()

    # -- the engine's loop --------------------------------------------------------------
    def _drain(self) -> None:
        if self._next_turn is not None:
            self._next_turn.cancel()
            self._next_turn = None
        engine = self.engine
        next_event = engine.next_event
        channels = self.channels  # replaced in place only
        budget = MAX_REQUESTS_PER_TURN
        try:
            while not self.closed and not self._write_paused:
                if not budget:
                    self._next_turn = self._loop.call_soon(self._drain)
                    break
                event = next_event()
                if event.__class__ is InterleavedFrame:  # the hot path: no isinstance, no call
                    if channels is not None:
                        sink = channels[event.channel]
                        if sink is not None:
                            sink(event.payload)
                    continue
                self._write_engine_answers()
                if event is NEED_DATA:
                    break
                assert isinstance(event, RtspRequestEvent)
                budget -= 1
                self._dispatch(event)
        except ProtocolError as exc:
            self._write_engine_answers()
            self.refuse(None, exc)
        self._settle()

    def _dispatch(self, event: RtspRequestEvent) -> None:
        try:
            pending = self.on_request(event)
        except HubError as exc:
            self.refuse(event, exc)
            return
        except Exception:
            self.log.exception("%s %s failed", event.method.value, loggable_target(event.uri))
            self.refuse(event, HubError())
            return
        if pending is not None:
            self._task = self._loop.create_task(self._finish(event, pending))
        elif self.engine.current is event:
            self._unanswered(event)

    async def _finish(self, event: RtspRequestEvent, pending: Coroutine[Any, Any, None]) -> None:
        try:
            await pending
        except HubError as exc:
            self.refuse(event, exc)
        except Exception:
            self.log.exception("%s %s failed", event.method.value, loggable_target(event.uri))
            self.refuse(event, HubError())
        finally:
            self._task = None
        if self.engine.current is event:
            self._unanswered(event)
        if not self.closed:
            self._drain()

    def _unanswered(self, event: RtspRequestEvent) -> None:
        self.log.error("%s %s: the handler did not answer", event.method.value, loggable_target(event.uri))
        self.refuse(event, HubError())

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        now = self.clock()
        self.before_timer(now)
        events = self.engine.handle_timer(now)
        self._write_engine_answers()
        for event in events:
            self.on_expired(event)
        self._settle()

    def _settle(self) -> None:
        """After any change: close when the engine is done, pause or resume
        reading, and keep the one timer at the engine's next deadline."""
        if self.closed:
            return
        engine = self.engine
        if engine.closing:
            self.close()
            return
        t = self.transport
        wait = engine.should_pause_reading or self._write_paused or self._next_turn is not None
        if t is not None and wait != self._paused:
            self._paused = not self._paused
            if self._paused:
                t.pause_reading()
            else:
                t.resume_reading()
        deadline = engine.get_timer()
        if deadline is None or (self._timer is not None and self._timer_at <= deadline):
            return  # an earlier timer fires first and schedules the next
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_later(max(0.0, deadline - self.clock()), self._on_timer)

    def _write_engine_answers(self) -> None:
        for answer in self.engine.data_to_send():
            self._write(answer)

    def _write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)
