"""Test-only asyncio glue around the sans-IO RTMP engine.

Serves ``RtmpServerConnection`` on 127.0.0.1 from a background thread, so a
test can run ffmpeg and PyAV against it with blocking calls. Publishers'
units are recorded per stream path; a player of a recorded path gets the
recording through the shared play mux (FLV tags made once, turned into RTMP
messages once), the way the server's fan-out will. Every connection's raw
input is kept, for fixtures.

This is not the server's glue (that lives with the server's processes); it
is as thin as a glue should be and bounded: every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from hub.media import amf0
from hub.media.flv import FlvMuxer
from hub.media.rtmp import (
    NEED_DATA, PAUSED, Connect, Event, MediaUnit, Metadata, Play, Publish, RtmpPlayMuxer,
    RtmpProtocolError, RtmpServerConnection, Unpublish,
)


@dataclass
class Unit:
    """A MediaUnit with its data copied out (the engine hands views)."""

    kind: str
    codec: str
    dts: int
    pts: int
    keyframe: bool
    config: bool
    data: bytes


@dataclass
class Recording:
    path: str
    units: list[Unit] = field(default_factory=list)
    metadata: dict[str, amf0.AmfValue] = field(default_factory=dict)
    unpublished: bool = False

    def play_bytes(self) -> bytes:
        """The recording as the play mux makes it: one FLV tag per unit, each
        turned into one RTMP message, the same bytes for every player."""
        video = next((u.codec for u in self.units if u.kind == "video"), None)
        flv = FlvMuxer("h265" if video == "h265" else "h264")
        rtmp = RtmpPlayMuxer()
        out = [rtmp.from_flv_tag(flv.metadata(320, 240, 25.0, 7 if video == "h264" else 12,
                                              10, 44100, 1))]
        for u in self.units:
            if u.kind == "video":
                tag = (flv.video_sequence_header(u.data, u.dts) if u.config
                       else flv.video_tag(u.data, u.dts, u.pts, u.keyframe))
            elif u.codec == "aac":
                tag = flv.audio_sequence_header(u.data, u.dts) if u.config else flv.audio_tag(u.data, u.dts)
            else:
                continue
            out.append(rtmp.from_flv_tag(tag))
        return b"".join(out)


@dataclass
class ConnLog:
    received: bytearray = field(default_factory=bytearray)
    events: list[Event] = field(default_factory=list)
    error: str | None = None
    closed: bool = False


class _Protocol(asyncio.Protocol):
    def __init__(self, glue: RtmpGlue) -> None:
        self.glue = glue
        self.log = ConnLog()
        glue.connections.append(self.log)
        self.loop = asyncio.get_running_loop()
        self.conn = RtmpServerConnection(self.loop.time())
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.recording: Recording | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self.log.received += data
        try:
            self.conn.receive_data(data, self.loop.time())
            self._drain()
        except RtmpProtocolError as exc:
            self.log.error = str(exc)
            self._close()

    def _drain(self) -> None:
        assert self.transport is not None
        while True:
            ev = self.conn.next_event()
            if ev is NEED_DATA or ev is PAUSED:
                break
            self.log.events.append(ev)
            self._on_event(ev)
        out = self.conn.data_to_send()
        if out:
            self.transport.write(out)
        if self.conn.closed:
            self._close()
        else:
            self._arm()

    def _on_event(self, ev: Event) -> None:
        assert self.transport is not None
        glue = self.glue
        if isinstance(ev, Connect):
            ok = glue.accept_connect(ev)
            self.transport.write(self.conn.accept_connect() if ok else self.conn.reject_connect())
        elif isinstance(ev, Publish):
            if ev.path in glue.recordings and not glue.recordings[ev.path].unpublished:
                self.transport.write(self.conn.reject_publish("already publishing"))
                return
            self.recording = glue.recordings[ev.path] = Recording(ev.path)
            self.transport.write(self.conn.accept_publish())
        elif isinstance(ev, Play):
            rec = glue.recordings.get(ev.path)
            if rec is None:
                self.transport.write(self.conn.play_not_found())
                return
            self.transport.write(self.conn.accept_play())
            self.transport.write(rec.play_bytes())
            if rec.unpublished:  # the whole recording went out: end as a live stream ends
                self.transport.write(self.conn.end_play())
        elif isinstance(ev, MediaUnit) and self.recording is not None:
            self.recording.units.append(Unit(ev.kind, ev.codec, ev.dts, ev.pts, ev.keyframe,
                                             ev.config, bytes(ev.data)))
        elif isinstance(ev, Metadata) and self.recording is not None:
            self.recording.metadata = ev.values
        elif isinstance(ev, Unpublish) and self.recording is not None:
            self.recording.unpublished = True

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        when = self.conn.get_timer()
        if when is not None:
            self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self.conn.handle_timer(self.loop.time())
        self._drain()

    def _close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.log.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.recording is not None:
            self.recording.unpublished = True


class RtmpGlue:
    """``with RtmpGlue() as glue:`` serves on ``glue.port`` until the block ends."""

    def __init__(self) -> None:
        self.recordings: dict[str, Recording] = {}
        self.connections: list[ConnLog] = []
        self.reject_apps: set[str] = set()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def accept_connect(self, ev: Connect) -> bool:
        return ev.app not in self.reject_apps

    def __enter__(self) -> RtmpGlue:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    async def _start(self) -> None:
        self._server = await self._loop.create_server(lambda: _Protocol(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the glue's loop and return its result (thread-safe reads)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)
