"""RTMP publishers on connections handed to the shard.

A front runs a publisher's handshake and its commands up to `publish`,
checks the push right, and hands the socket here with *every byte it read
from the start* (`hub.ipc.handoff`). `RtmpPublisher` replays them into a
fresh `RtmpServerConnection`, which is deterministic: the replay brings it
to exactly the state the front's engine was in (chunk size, each chunk
stream's last header, byte counts, app and stream names). What it writes
during the replay was already written by the front and is dropped; from the
`publish` decision on, its output goes to the socket. So no engine state
crosses the process boundary: only bytes, as for RTSP publishers.

The stream side is one `ingest.IngestSession`, as for every source: the
tracks come from the publisher's sequence headers (`rtmp_tracks`), frames
go in as whole access units (`push_au`), later sequence headers as
parameter changes (`set_params`, `set_audio_config`). A second publisher
of a live path replaces the first when it goes live, as an RTSP publisher
does at RECORD. Liveness is the ingest's tick: no bytes for the session
timeout end the publisher, and the engine's own "no media" deadline is
checked on the same tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, cast

from ..child import ChildArgs
from ..errors import ProtocolError
from ..media.amf0 import AmfValue
from ..media.rtmp import (
    NEED_DATA, PAUSED, Connect, DeleteStream, MediaUnit, Metadata, Play, Publish, RtmpServerConnection,
    TimedOut, Unpublish,
)
from ..media.seqnum import TimestampUnwrapper
from ..placement import canonical_path
from .handoff_host import HandoffHost
from .read_gate import ReadGate
from .ingest import MAX_TICK, IngestSession
from .rtmp_tracks import Kind, RtmpTrackPlan, video_track
from .streams import StreamTable

log = logging.getLogger("hub.shard.rtmp")

__all__ = ["RtmpPublishHost", "RtmpPublisher"]

#: Our own bytes queued for a publisher that does not read them
#: (acknowledgements, ping answers): past this it is closed.
MAX_QUEUED = 1 << 20


class RtmpPublishHost(HandoffHost["RtmpPublisher"]):
    """The shard's side of every RTMP publisher: config, stream table, sessions.

    Owns the hand-off tasks (cancelled on `close`) and the live sessions."""

    label = "RTMP publisher"

    def __init__(self, args: ChildArgs, streams: StreamTable, *,
                 clock: Callable[[], float] = time.monotonic, gate: ReadGate | None = None) -> None:
        super().__init__()
        self.args = args
        #: Reading in windows (`ingest_window`, `unwatched_ingest_window`), shared with the shard's other sources.
        self.gate = gate
        self.streams = streams
        self.clock = clock
        self.timeout = float(args.config.rtsp_session_timeout)
        self.sessions: set[RtmpPublisher] = set()
        #: Called with each session as it closes (admission, access log: hub.shard.main).
        self.on_closed: list[Callable[[RtmpPublisher], None]] = []

    def make(self, path: str, peer: str, user: str) -> RtmpPublisher:
        return RtmpPublisher(self, path, peer, user)

    def close(self) -> None:
        self.cancel_handoffs()
        for session in list(self.sessions):
            session.close()


class RtmpPublisher(asyncio.Protocol):
    """One publisher's RTMP connection: the engine here, the stream in `self.ingest`."""

    def __init__(self, host: RtmpPublishHost, path: str, peer: str, user: str = "") -> None:
        self.host = host
        self.path = path
        self.peer = peer
        self.user = user  # whose credentials the front checked (auth on)
        self.clock = host.clock
        self.started = time.monotonic()  # for the access log's duration
        self.conn = RtmpServerConnection(host.clock(), idle_timeout=host.timeout)
        self.ingest = IngestSession(host.streams, path, peer, self, timeout=host.timeout,
                                    clock=host.clock, on_tick=self._tick)
        self.transport: asyncio.Transport | None = None
        #: Until the publish decision: the engine re-makes what the front sent.
        self.replaying = True
        self.plan = RtmpTrackPlan()
        self.index: dict[Kind, int] = {}
        self.scale: dict[Kind, float] = {}  # track clock units per millisecond
        self.unwrap: dict[Kind, TimestampUnwrapper] = {}
        self.dropped = 0  # frames of tracks the stream does not have
        self.closed = False

    # -- asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses: no isinstance check
        self.transport = cast(asyncio.Transport, transport)
        self.host.sessions.add(self)
        self.ingest.read_in_windows(self.host.gate, transport)
        self.ingest.start(MAX_TICK)
        log.info("%s: RTMP publisher %s handed over", self.path, self.peer)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.ingest.count(len(data))
        try:
            self.conn.receive_data(data, self.clock())
            self._drain()
        except ProtocolError as exc:
            log.info("%s: closing RTMP publisher %s: %s", self.path, self.peer, exc.message)
            self.close()

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    # -- the engine's events ---------------------------------------------------------
    def _drain(self) -> None:
        conn = self.conn
        while not self.closed:
            ev = conn.next_event()
            if ev is NEED_DATA or ev is PAUSED:
                break
            if type(ev) is MediaUnit:
                self._on_unit(ev)
            elif isinstance(ev, Connect):
                conn.accept_connect()  # the front accepted it; its answer went out from there
            elif isinstance(ev, Publish):
                self._on_publish(ev)
            elif isinstance(ev, Metadata):
                self._on_metadata(ev.values)
            elif isinstance(ev, TimedOut):
                log.info("%s: RTMP publisher %s timed out: %s", self.path, self.peer, ev.reason)
                self.close()
            elif isinstance(ev, (Unpublish, DeleteStream, Play)):
                # The publish is over (a handed-over connection never plays).
                if not self.replaying:
                    self._send(conn.data_to_send())
                self.close()
        out = conn.data_to_send()
        if out and not self.replaying:
            self._send(out)
        if conn.closed:
            self.close()

    def _on_publish(self, ev: Publish) -> None:
        conn = self.conn
        conn.data_to_send()  # the front's answers, made again: dropped
        if not self.replaying or canonical_path(ev.path) != self.path:
            # Not what the front handed over: refuse, as a bad name.
            self._send(conn.reject_publish("Stream name refused."))
            self.close()
            return
        self.replaying = False
        self._send(conn.accept_publish())
        log.info("%s: RTMP publisher %s publishing", self.path, self.peer)

    def _on_metadata(self, values: dict[str, AmfValue]) -> None:
        if not self.ingest.live:
            self.plan.metadata(values)
            if self.plan.ready():
                self._go_live()

    # -- media ------------------------------------------------------------------------
    def _on_unit(self, unit: MediaUnit) -> None:
        plan = self.plan
        ingest = self.ingest
        if not ingest.live:
            if unit.config or (unit.codec in ("pcma", "pcmu") and not plan.configured(unit)):
                plan.configure(unit)
                if unit.config:
                    if plan.ready():
                        self._go_live()
                    return
            if not plan.configured(unit):
                self.dropped += 1
                return
            self._go_live()
        elif unit.config:
            self._reconfigure(unit)
            return
        kind: Kind = unit.kind
        index = self.index.get(kind)
        if index is None or not plan.configured(unit):  # no such track, or another codec
            self.dropped += 1
            return
        dts = self.unwrap[kind].extend(unit.dts)
        scale = self.scale[kind]
        if kind == "video":
            pts = dts + unit.pts - unit.dts
            ingest.push_au(index, unit.data, round(pts * scale), round(dts * scale))
        else:
            ingest.push_au(index, unit.data, round(dts * scale))

    def _reconfigure(self, unit: MediaUnit) -> None:
        """A sequence header after going live: new parameters for the readers
        (a codec the track does not have is ignored)."""
        kind: Kind = unit.kind
        index = self.index.get(kind)
        if index is None or not self.plan.configured(unit):
            self.dropped += 1
            return
        if kind == "video":
            _desc, params = video_track(unit.codec, unit.data)
            self.ingest.set_params(index, params)
        else:
            self.ingest.set_audio_config(index, bytes(unit.data))

    def _go_live(self) -> None:
        tracks, self.index = self.plan.tracks()
        if not tracks:
            return
        ingest = self.ingest
        ingest.go_live(tracks)
        for kind, index in self.index.items():
            self.scale[kind] = tracks[index].clock_rate / 1000
            self.unwrap[kind] = TimestampUnwrapper()
        video = self.index.get("video")
        if video is not None:  # the ingest follows the record's parameter sets from now on
            ingest.set_params(video, self.plan.video_params)

    # -- output and the end --------------------------------------------------------------
    def _tick(self, now: float) -> None:
        """The ingest's liveness tick: the engine's deadlines too."""
        self.conn.handle_timer(now)
        self._drain()

    def _send(self, data: bytes) -> None:
        transport = self.transport
        if not data or transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_QUEUED:
            log.info("%s: RTMP publisher %s does not read; closing", self.path, self.peer)
            transport.abort()
            return
        transport.write(data)

    def close(self) -> None:
        """End the session: its stream and its connection. StreamTable.close
        (DELETE, a newer publisher) and the ingest's timeout call this too."""
        if self.closed:
            return
        self.closed = True
        self.ingest.close()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.host.sessions.discard(self)
        log.info("%s: RTMP publisher %s closed", self.path, self.peer)
        for cb in self.host.on_closed:
            cb(self)
