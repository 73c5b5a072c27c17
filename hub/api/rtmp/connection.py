"""RTMP on a front: players served here, publishers handed to their shard.

One `RtmpFrontProtocol` per connection, on RTMP's own port or switched to by
the shared port's sniffer (first byte 0x03, the handshake's version). It
drives the sans-IO `RtmpServerConnection`: the handshake, `connect`
(refused with NetConnection.Connect.Rejected when the app carries bad
credentials), `releaseStream`/`FCPublish`/`createStream`, then:

- `play`: the pull right (auth on), the stream's view, and the player joins
  the view's RTMP fan-out (`fanout.RtmpFanout`), as an HTTP-FLV player joins
  the FLV one: the GOP at once, then the same bytes as every other player;
- `publish`: reading stops, the push right is checked (auth on; refusal is
  NetStream.Publish.BadName), and the socket goes to the shard that owns the
  path with *every byte read from the connection's start*. The shard's
  engine replays them and reaches this engine's state exactly (see
  `hub.shard.rtmp_publish`), so nothing of the engine crosses the process
  boundary but bytes. Why at `publish` and not after `connect`: only
  `publish` says that the connection publishes, and which path (the shard
  is chosen by it); a player never moves.

Every wait is bounded: the engine's setup deadlines (handshake and connect,
then publish/play), the decisions' own (password checks, the stream's open,
the shard's link), and the bytes kept for a hand-off (`MAX_TRANSCRIPT`).
While a decision is pending the connection is not read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Coroutine

from ...errors import HubError, NotFound, ProtocolError, ServiceUnavailable
from ...ipc.channel import IpcChannel
from ...ipc.handoff import send_socket, set_nodelay
from ...ipc.messages import HANDOFF_RTMP
from ...media.flv import HevcMode
from ...media.rtmp import (
    NEED_DATA, PAUSED, Connect, DeleteStream, Event, Play, Publish, RtmpServerConnection, TimedOut,
    Unpublish,
)
from ...media.rtmp.command import PLAY_FAILED
from ...placement import canonical_path
from ..play.consumer import Consumer, cap_send_buffer, close_when_sent, peer_address, write_bounded
from .credentials import authorize, has_credentials, rtmp_user
from .fanout import RtmpConsumer, RtmpFanout, fanout_key

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.rtmp")

__all__ = ["RtmpFrontProtocol", "MAX_TRANSCRIPT", "HANDOFF_FLUSH_TIMEOUT"]

#: Bytes a connection may send before its `publish` is handed over: the
#: handshake (3073) and a few commands; FFmpeg and OBS send under 2 KiB.
MAX_TRANSCRIPT = 256 << 10
#: Our earlier answers must have left before the shard writes on the socket.
HANDOFF_FLUSH_TIMEOUT = 5.0


class RtmpFrontProtocol(asyncio.Protocol):
    def __init__(self, front: FrontContext) -> None:
        self.front = front
        self.loop = asyncio.get_running_loop()
        self.conn = RtmpServerConnection(self.loop.time())
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        #: Every byte read, until the connection plays (None) or is handed over.
        self.transcript: bytearray | None = bytearray()
        self.consumer: RtmpConsumer | None = None
        self._decision: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._drained: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        set_nodelay(transport)
        self.peer = peer_address(transport)
        counters = self.front.counters
        counters.rtmp_total += 1
        counters.rtmp_active += 1
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.transcript is not None:
            self.transcript += data
            if len(self.transcript) > MAX_TRANSCRIPT:
                self._close(f"{len(self.transcript)} bytes before publish or play")
                return
        if self.consumer is not None:
            self.consumer.inbytes += len(data)
        try:
            self.conn.receive_data(data, self.loop.time())
        except ProtocolError as exc:
            self._close(exc.message)
            return
        self._drain()

    def pause_writing(self) -> None:
        pass  # players are bounded by their Consumer, a hand-off waits below

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.counters.rtmp_active -= 1
        if self._decision is not None:
            self._decision.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.consumer is not None:
            self.consumer.close()

    # -- the engine ---------------------------------------------------------------------
    def _drain(self) -> None:
        """Take the engine's events until it needs data or waits for us; a
        malformed chunk or AMF body closes the connection."""
        conn = self.conn
        try:
            while self._decision is None:  # a closed engine still hands out its last events
                ev = conn.next_event()
                if ev is NEED_DATA or ev is PAUSED:
                    break
                self._on_event(ev)
        except ProtocolError as exc:
            self._close(exc.message)
            return
        self._write(conn.data_to_send())
        if conn.closed:
            self._close(None)
        else:
            self._arm()

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, Connect):
            self._decide(self._connect(ev))
        elif isinstance(ev, Publish):
            self._decide(self._publish(ev))
        elif isinstance(ev, Play):
            self._decide(self._play(ev))
        elif isinstance(ev, (DeleteStream, Unpublish)):
            self._close(None)  # a player's end (a publisher's never reaches us)
        elif isinstance(ev, TimedOut):
            log.info("RTMP %s: %s", self.peer, ev.reason)
        # HandshakeDone, PingResponse: nothing to do

    def _decide(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run the decision the engine waits for; the connection is not read meanwhile."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._decision = self.loop.create_task(coro)
        self._decision.add_done_callback(self._decided)

    def _decided(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("RTMP %s: decision failed", self.peer, exc_info=exc)
            self._close(None, abort=True)

    def _carry_on(self) -> None:
        """After an accepted decision: read again, and parse what is buffered."""
        self._decision = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.resume_reading()
        self._drain()

    def _refuse(self, refusal: bytes, why: str) -> None:
        self._decision = None
        self._write(refusal)
        self._close(why)

    # -- decisions ------------------------------------------------------------------------
    async def _connect(self, ev: Connect) -> None:
        if self.front.config.auth and has_credentials(ev.query):
            try:
                await rtmp_user(self.front, ev.query)
            except HubError as exc:
                self._refuse(self.conn.reject_connect(_description(exc)), f"connect: {exc.message}")
                return
        self.conn.handle_timer(self.loop.time())  # the next deadline counts from now
        self._write(self.conn.accept_connect())
        self._carry_on()

    async def _publish(self, ev: Publish) -> None:
        path = canonical_path(ev.path)
        try:
            user = await authorize(self.front, ev.query, path, push=True)
            await self.front.admit_publisher(path, self.peer)  # the shard releases it at the session's end
        except HubError as exc:
            self._refuse(self.conn.reject_publish(_description(exc)), f"publish {path}: {exc.message}")
            return
        try:
            channel = await self.front.shards.channel_for(path)
            await self._flushed()
            self._hand_off(channel, path, user.name if user is not None else "")
        except HubError as exc:
            self.front.release_publisher(path, self.peer)
            self._refuse(self.conn.reject_publish(_description(exc)), f"publish {path}: {exc.message}")
        except BaseException:
            self.front.release_publisher(path, self.peer)
            raise

    def _hand_off(self, channel: IpcChannel, path: str, user: str) -> None:
        """The socket and every byte read from it to the shard that owns `path`."""
        transport = self.transport
        if transport is None or transport.is_closing() or self.transcript is None:
            raise ServiceUnavailable("the client left")
        sock = transport.get_extra_info("socket")
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            send_socket(channel, HANDOFF_RTMP({"path": path, "peer": self.peer, "user": user}), dup,
                        self.transcript)
        finally:
            dup.close()
        self.transcript = None
        self._decision = None
        log.info("RTMP %s: publisher of %s handed to its shard", self.peer, path)
        # Only this process's fd closes; the shard's copy keeps the connection.
        transport.close()

    async def _flushed(self) -> None:
        """Until what we wrote has left (bounded), so the shard's answers
        follow ours on the wire."""
        transport = self.transport
        assert transport is not None
        if not transport.get_write_buffer_size():
            return
        self._drained = self.loop.create_future()
        transport.set_write_buffer_limits(high=0, low=0)  # resume_writing once empty
        try:
            await asyncio.wait_for(self._drained, HANDOFF_FLUSH_TIMEOUT)
        except asyncio.TimeoutError:
            raise ServiceUnavailable("the client does not read") from None

    async def _play(self, ev: Play) -> None:
        path = canonical_path(ev.path)
        hevc_mode: HevcMode = "legacy" if ev.query.get("hevc") == "legacy" else "enhanced"
        ticket = None
        try:
            user = await authorize(self.front, ev.query, path, push=False)
            view = await self.front.views.open(path)
            ticket = await self.front.admit_player(view.desc.path, self.peer)
            fanout = view.fanout(fanout_key(hevc_mode), lambda v: RtmpFanout(v, hevc_mode))
        except HubError as exc:
            if ticket is not None:  # the stream ended meanwhile
                ticket.release()
            refusal = (self.conn.reject_play() if isinstance(exc, NotFound)
                       else self.conn.reject_play(_description(exc), PLAY_FAILED))
            self._refuse(refusal, f"play {path}: {exc.message}")
            return
        transport = self.transport
        assert transport is not None
        self.transcript = None

        def gone(c: Consumer) -> None:
            view.drop_consumer(c)

        consumer = RtmpConsumer(transport, self.conn, f"net=rtmp,{self.peer}", on_close=gone)
        consumer.ticket = ticket
        consumer.user = user.name if user is not None else ""
        self.consumer = consumer
        consumer.write_direct(self.conn.accept_play())
        cap_send_buffer(transport)
        fanout.join(consumer)
        self._carry_on()

    # -- output and the end ----------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if not data or self.transport is None:
            return
        if self.consumer is not None:
            self.consumer.write_direct(data)
        else:
            write_bounded(self.transport, data)

    def _arm(self) -> None:
        """The engine's next deadline as one timer (moved only when it moves)."""
        when = self.conn.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.conn.handle_timer(self.loop.time())
        self._drain()

    def _close(self, why: str | None, abort: bool = False) -> None:
        if why:
            log.info("closing RTMP connection %s: %s", self.peer, why)
        if self.consumer is not None:
            self.consumer.close(abort=abort)
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if abort:
                transport.abort()
            else:
                close_when_sent(transport)


def _description(exc: HubError) -> str:
    """What a refusal tells the client: the reason, no internals for our own errors."""
    return exc.reason if exc.http_status >= 500 else exc.message
