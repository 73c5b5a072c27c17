"""One player's connection, as the fan-out sees it.

Every player of a stream in this front gets the same bytes, written with one
transport call per loop turn. What differs per player is only how far behind
it is: past a write-buffer bound it skips to the next keyframe; stuck past a
time bound it is closed. A slow player never slows the stream.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from ...gotime import rfc3339nano

log = logging.getLogger("hub.api.play.consumer")

#: Kernel send buffer per player socket (Linux doubles it: 128 KiB, half a
#: second of a 2 Mbit/s stream; 10 Mbit/s at 100 ms RTT). Uncapped, Linux lets
#: ~18 s of a 2 Mbit/s stream queue before the transport reports back-pressure.
SNDBUF = 64 * 1024
#: Bytes queued in the transport past which the player skips to a keyframe.
HIGH_WATER = 1 << 20
#: A transport that has not drained for this long: the player skips ahead.
BEHIND_SECONDS = 2.0
#: A transport that has not drained for this long: the player is closed.
STUCK_SECONDS = 10.0
#: Bytes queued for a client past which its own replies (pongs, RTSP/WSP
#: responses, headers) are not queued: the client is not reading and is
#: dropped. Above HIGH_WATER, so a slow player's media (not queued past
#: HIGH_WATER) never trips it; bounds what a ping flood can cost.
CONTROL_LIMIT = 2 * HIGH_WATER
#: A WebSocket client's reading pauses while more than FLOW_HIGH is queued
#: for it and resumes below FLOW_LOW (ClientFlow).
FLOW_HIGH = 256 * 1024
FLOW_LOW = 64 * 1024

_ids = itertools.count(1)
_cid_suffix = 0


def next_cid() -> int:
    return next(_ids) << 8 | _cid_suffix


def set_cid_suffix(front_index: int) -> None:
    """Consumer ids are unique across fronts: the front's index is the low byte."""
    global _cid_suffix
    _cid_suffix = front_index & 0xFF


def write_bounded(transport: asyncio.Transport, data: bytes) -> bool:
    """Queue a client's own bytes (a pong, a response) unless more than
    CONTROL_LIMIT is already queued for it: then it is not reading what it
    asks for, and it is dropped (aborted: close() would wait to flush).
    True if written."""
    if transport.is_closing():
        return False
    queued = transport.get_write_buffer_size()
    if queued > CONTROL_LIMIT:
        log.info("dropping a client that does not read: %d bytes queued", queued)
        transport.abort()
        return False
    transport.write(data)
    return True


def close_when_sent(transport: asyncio.Transport) -> None:
    """Close once what is queued for the client has left. `close()` alone
    waits for that forever, holding the bytes (a whole HLS segment, a
    player's last megabyte) and the socket for a client that stops
    reading; one that takes nothing for STUCK_SECONDS is aborted (a slow
    one that drains, however slowly, is not)."""
    if transport.is_closing():
        return
    transport.close()
    queued = transport.get_write_buffer_size()
    if queued:
        asyncio.get_running_loop().call_later(STUCK_SECONDS, _drop_if_stuck, transport, queued)


def _drop_if_stuck(transport: asyncio.Transport, queued: int) -> None:
    left = transport.get_write_buffer_size()
    if not left:
        return  # sent (the transport is gone, or about to be)
    if left < queued:
        asyncio.get_running_loop().call_later(STUCK_SECONDS, _drop_if_stuck, transport, left)
        return
    log.info("dropping a closed connection whose client has not read for %.0f s (%d bytes queued)",
             STUCK_SECONDS, left)
    transport.abort()


class ClientFlow:
    """Reading follows writing, for a client whose input makes output (a
    WebSocket: pongs, RTSP/WSP replies). Past FLOW_HIGH queued for it, its
    reading pauses, so it cannot make us queue more nor burn our CPU; not
    drained below FLOW_LOW within STUCK_SECONDS, it is dropped. The owning
    protocol forwards `pause_writing`/`resume_writing` and calls `close`."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._stuck: asyncio.TimerHandle | None = None
        transport.set_write_buffer_limits(high=FLOW_HIGH, low=FLOW_LOW)

    def pause_writing(self) -> None:
        if self.transport.is_closing():
            return
        self.transport.pause_reading()
        if self._stuck is None:
            self._stuck = asyncio.get_running_loop().call_later(STUCK_SECONDS, self._drop)

    def resume_writing(self) -> None:
        self.close()
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def _drop(self) -> None:
        self._stuck = None
        log.info("dropping a client that has not read for %.0f s (%d bytes queued)",
                 STUCK_SECONDS, self.transport.get_write_buffer_size())
        self.transport.abort()

    def close(self) -> None:
        if self._stuck is not None:
            self._stuck.cancel()
            self._stuck = None


class Deadline:
    """Closes a client's transport unless `met()` is called within `seconds`
    (a WebSocket that never sends its first request, INIT or JOIN)."""

    def __init__(self, transport: asyncio.Transport, seconds: float, what: str) -> None:
        self.transport = transport
        self.what = what
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self._timer = None
        log.info("closing a connection: no %s in time", self.what)
        close_when_sent(self.transport)

    def met(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


#: A consumer's `net=` (its `extra`) -> the protocol label of the metrics.
_PROTOCOLS = {"http-flv": "flv", "ws-flv": "wsflv", "rtsp-tcp": "rtsp", "rtsp-udp": "rtsp",
              "rtsp-multicast": "rtsp", "rtsp-http": "tunnel", "webrtc": "whep"}


def peer_address(transport: asyncio.BaseTransport) -> str:
    """`host:port` (`[host]:port` for IPv6) of a connection's peer, or ""."""
    peer = transport.get_extra_info("peername")
    if not peer:
        return ""
    host = str(peer[0])
    return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"


class Ticket(Protocol):
    """A player's admission (hub.api.context): released once when it leaves."""

    def release(self) -> None: ...


def cap_send_buffer(transport: asyncio.BaseTransport, size: int = SNDBUF) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except (OSError, ValueError):  # closed meanwhile (uvloop's stand-in: ValueError)
        pass


class Consumer:
    """A player attached to a stream view, whatever its protocol.

    It counts what happens to it (bytes out, skips, an abort); the view
    adds those up per path when the metrics are asked for and keeps them
    when the player leaves (`StreamViews.retire`)."""

    def __init__(self, transport: asyncio.Transport, packet_type: str, extra: str,
                 on_close: Callable[[Consumer], None] | None = None) -> None:
        self.cid = next_cid()
        self.transport = transport
        self.packet_type = packet_type  # "RTP" | "FLV" | "TS"
        self.extra = extra
        self.start_on = rfc3339nano(datetime.now(timezone.utc))
        self.inbytes = 0
        self.outbytes = 0
        self.skipping = False  # waiting for a keyframe after falling behind
        self.dropped_batches = 0
        self.skips = 0  # times it fell behind and skipped ahead
        self.aborted = False  # closed for not draining
        self.started = time.monotonic()
        self.remote = peer_address(transport)  # "host:port", kept for after the close
        self.user = ""  # who it played as, when credentials were asked
        self.ticket: Ticket | None = None
        self.retired = False  # its counts were added to the front's (StreamViews.retire)
        self._stuck_since = 0.0
        self._on_close = on_close
        self.closed = False

    def send(self, blob: bytes | memoryview, key_offset: int) -> None:
        """Queue this turn's bytes; `key_offset` is where the first keyframe
        starts in `blob` (-1 when there is none).

        A player is behind when its transport holds more than HIGH_WATER or
        has not drained for BEHIND_SECONDS; it then drops whole batches until
        the transport drains and a keyframe comes. Not drained for
        STUCK_SECONDS, it is closed."""
        if self.closed:
            return
        t = self.transport
        if t.is_closing():
            self.close()
            return
        if t.get_write_buffer_size():
            now = time.monotonic()
            if not self._stuck_since:
                self._stuck_since = now
            waited = now - self._stuck_since
            if waited > STUCK_SECONDS:
                log.info("consumer %d has not drained for %.0f s; closing", self.cid, waited)
                # abort, not close: close() would wait to flush what it holds.
                self.aborted = True
                self.close(abort=True)
                return
            if self.skipping or waited > BEHIND_SECONDS or t.get_write_buffer_size() > HIGH_WATER:
                if not self.skipping:
                    self.skips += 1
                self.skipping = True
                self.dropped_batches += 1
                return
        else:
            self._stuck_since = 0.0
        if self.skipping:
            if key_offset < 0:
                self.dropped_batches += 1
                return
            self.skipping = False
            blob = memoryview(blob)[key_offset:]
        t.write(blob)
        self.outbytes += len(blob)

    def write_direct(self, data: bytes) -> None:
        """Per-player bytes (headers at join, pongs), outside the shared
        fan-out; a player that has CONTROL_LIMIT queued already is closed."""
        if self.closed or self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > CONTROL_LIMIT:
            log.info("consumer %d does not read (%d bytes queued); closing", self.cid,
                     self.transport.get_write_buffer_size())
            self.aborted = True
            self.close(abort=True)
            return
        self.transport.write(data)
        self.outbytes += len(data)

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        if abort:
            self.transport.abort()
        else:
            close_when_sent(self.transport)
        if self._on_close is not None:
            self._on_close(self)

    @property
    def protocol(self) -> str:
        """`flv`, `wsflv`, `rtsp`, `wsp`, `rtsp-ws`, `tunnel` (from its `net=`)."""
        net = self.extra.split(",", 1)[0].removeprefix("net=")
        return _PROTOCOLS.get(net, net)

    def info(self) -> dict[str, Any]:
        return {"id": self.cid, "start_on": self.start_on, "packet_type": self.packet_type,
                "extra": self.extra, "flow": {"inbytes": self.inbytes, "outbytes": self.outbytes}}
