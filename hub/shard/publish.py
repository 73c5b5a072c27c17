"""RTSP publishers (ANNOUNCE/SETUP/RECORD) on connections handed to the shard.

A front reads a publisher's requests up to its ANNOUNCE and passes the
socket here with the ANNOUNCE as received and every byte it read after it
(`hub.ipc.handoff`); `PublishHost.handoff` adopts it and a `RtspPublisher`
carries on the conversation from exactly there, pipelined requests
included. The stream goes live at RECORD, not at ANNOUNCE, as ipchub does:
a publisher that never gets to RECORD cannot replace a live one.

The session's object split follows gortsplib: the protocol is the sans-IO
engine (`hub.media.rtsp.server`, built `handed_over`: a publisher's
connection never plays) under the glue the fronts' players use too
(`hub.rtsp_glue`); this module decides what each request does; its
`ingest.IngestSession` is the stream side (tracks, ring entries, going
live, parameter changes, counts), the same one a route pull uses;
`udp_in.UdpPairReceiver` reads a track's UDP ports. The session's liveness
is the engine's timer: no byte on the connection for the session timeout
ends it, and traffic on its UDP ports (the ingest's `seen` flag, read when
the timer fires) counts as bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable

from ..child import ChildArgs
from ..errors import BadRequest, MethodNotValidInState, ServiceUnavailable, UnsupportedTransport
from ..media.rtsp.events import (Announce, GetParameter, Options, Pause, Record, RtspRequestEvent, SetParameter,
                                 Setup, Teardown)
from ..media.rtsp.transport import TransportSpec
from ..media.sdp import Sdp
from ..rtsp_glue import Pending, RtspServerProtocol
from ..udp_ports import PortPairPool
from .handoff_host import HandoffHost
from .ingest import IngestSession
from .read_gate import ReadGate
from .sdp_tracks import AnnouncedTrack, announced_tracks, published_tracks, track_for_uri
from .stream import Stream
from .streams import StreamTable
from .udp_in import UdpPairReceiver

log = logging.getLogger("hub.shard.publish")

__all__ = ["PublishHost", "RtspPublisher"]


#: From the hand-off (its ANNOUNCE) to RECORD. A publisher that sets up and
#: never records would hold its UDP ports and connection for nothing (its
#: keep-alives keep the session): past this it is closed.
RECORD_WITHIN = 10.0
#: Tracks one publisher may set up over UDP: each binds a port pair of the
#: shard's slice (an SDP may announce 32 media).
MAX_UDP_TRACKS = 8


class PublishHost(HandoffHost["RtspPublisher"]):
    """The shard's side of every publisher: config, stream table, UDP ports.

    Owns the hand-off tasks (cancelled on `close`) and the live sessions.
    """

    label = "RTSP publisher"

    def __init__(self, args: ChildArgs, streams: StreamTable, *,
                 clock: Callable[[], float] = time.monotonic,
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 wall_clock: Callable[[], float] | None = time.time,
                 gate: ReadGate | None = None, record_within: float = RECORD_WITHIN) -> None:
        super().__init__()
        self.record_within = record_within  # RECORD_WITHIN (tests shorten it)
        self.args = args
        #: Reading in windows (`ingest_window`, `unwatched_ingest_window`), shared with the shard's other sources.
        self.gate = gate
        self.config = args.config
        self.streams = streams
        self.clock = clock
        self.random_bytes = random_bytes
        self.wall_clock = wall_clock
        self.session_timeout = float(self.config.rtsp_session_timeout)
        self.sessions: set[RtspPublisher] = set()
        #: Called with each session as it closes (admission, access log: hub.shard.main).
        self.on_closed: list[Callable[[RtspPublisher], None]] = []
        self._ports: PortPairPool | None = None

    @property
    def ports(self) -> PortPairPool:
        """This shard's slice of the RTP port range.

        The fronts take slices shard_count + i of shard_count + front_count
        (hub.api.context), so shard i takes slice i of the same division.
        """
        if self._ports is None:
            c = self.config
            self._ports = PortPairPool(c.rtp_port_min, c.rtp_port_max, slice_index=self.args.index,
                                       slices=c.shard_count + c.front_count)
        return self._ports

    def make(self, path: str, peer: str, user: str) -> RtspPublisher:
        return RtspPublisher(self, path, peer, user)

    def close(self) -> None:
        self.cancel_handoffs()
        for session in list(self.sessions):
            session.close()


@dataclass
class _Setup:
    """One SETUP of the session: the track and how its packets arrive."""

    track: AnnouncedTrack
    answer: TransportSpec
    interleaved: tuple[int, int] | None = None
    udp: UdpPairReceiver | None = None


def _split_peer(peer: str) -> str:
    host, sep, _ = peer.rpartition(":")
    return (host if sep else peer).strip("[]")


class RtspPublisher(RtspServerProtocol):
    """One publisher's RTSP connection (and its UDP ports, if any): the
    requests here, the stream in `self.ingest`.

    The ingest's `bytes_in`, and the stream's `size` once live, count every
    byte received from the publisher: all bytes read on the TCP connection
    after the hand-off (the replayed ones included: requests, SDP, `$` frames
    with their 4-byte prefixes) plus the whole of every UDP datagram accepted
    on its RTP and RTCP ports.
    """

    log = log

    def __init__(self, host: PublishHost, path: str, peer: str, user: str = "") -> None:
        super().__init__(handed_over=True, session_timeout=host.session_timeout, clock=host.clock,
                         random_bytes=host.random_bytes, wall_clock=host.wall_clock)
        self.host = host
        self.path = path
        self.peer = peer
        self.user = user  # whose credentials the front checked (auth on)
        self.started = time.monotonic()
        self.peer_host = _split_peer(peer)
        self.sdp: Sdp | None = None
        self.announced: list[AnnouncedTrack] = []
        self.setups: dict[int, _Setup] = {}  # by announced index
        self._at_boundary = False  # the engine holds no unread bytes (see data_received)
        self.ingest = IngestSession(host.streams, path, peer, self, timeout=host.session_timeout,
                                    clock=host.clock)
        self.channels = self.ingest.channels  # `$` frames straight to the tracks
        self._record_timer: asyncio.TimerHandle | None = None

    @property
    def stream(self) -> Stream | None:
        return self.ingest.stream

    # -- asyncio.Protocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.host.sessions.add(self)
        log.info("%s: publisher %s connected", self.path, self.peer)
        self.ingest.read_in_windows(self.host.gate, transport)
        self._record_timer = asyncio.get_running_loop().call_later(self.host.record_within, self._no_record)
        super().connection_made(transport)

    def _no_record(self) -> None:
        self._record_timer = None
        if not self.ingest.live and not self.closed:
            log.info("%s: publisher %s sent no RECORD within %g s; closing", self.path, self.peer,
                     self.host.record_within)
            self.close()

    def data_received(self, data: bytes) -> None:
        ingest = self.ingest
        ingest.count(len(data))
        if self._at_boundary and not self.closed:
            # The hot path: whole `$` frames at the start of a read go to
            # their tracks as views of it; the engine parses what is left.
            done = ingest.receive_frames(data)
            if done == len(data):
                return
            data = data[done:]
        super().data_received(data)
        # Only the engine's reading buffers bytes: nothing left in it means
        # the next read starts at a message or frame.
        self._at_boundary = not self.engine.buffered

    def before_timer(self, now: float) -> None:
        if self.ingest.seen:  # UDP datagrams (and bytes) since the last timer
            self.ingest.seen = False
            self.engine.touch(now)

    # -- requests -------------------------------------------------------------
    def on_request(self, event: RtspRequestEvent) -> Pending:
        if isinstance(event, (Options, GetParameter, SetParameter, Pause, Teardown)):
            self.reply(event)  # a 2xx TEARDOWN ends the session and the connection
        elif isinstance(event, Announce):
            self._announce(event)
        elif isinstance(event, Setup):
            self._setup(event)
        elif isinstance(event, Record):
            if not self.ingest.live:
                self._go_live()
            if self._record_timer is not None:
                self._record_timer.cancel()
                self._record_timer = None
            self.reply(event)
        else:  # the engine lets nothing else through on a publisher's connection
            raise MethodNotValidInState(f"{event.method.value} on a publishing connection")
        return None

    def _announce(self, event: Announce) -> None:
        if event.content_type != "application/sdp":
            raise BadRequest(f"ANNOUNCE with Content-Type {event.content_type[:40]!r}, not application/sdp")
        sdp = Sdp.parse(event.sdp)
        announced = announced_tracks(sdp)
        self.sdp, self.announced = sdp, announced
        self.reply(event)

    def _setup(self, event: Setup) -> None:
        track = track_for_uri(self.announced, event.uri)
        setup = self._pick_transport(track, event.transport.specs)
        old = self.setups.get(track.desc.index)
        if old is not None and old.udp is not None:
            old.udp.close()
        self.setups[track.desc.index] = setup
        self.reply(event, headers=[("Transport", str(setup.answer))])

    def _pick_transport(self, track: AnnouncedTrack, offers: list[TransportSpec]) -> _Setup:
        """The first offer we can record with: TCP interleaved or unicast UDP."""
        for spec in offers:
            if spec.mode not in (None, "RECORD") or spec.is_multicast:
                continue
            if spec.is_tcp:
                pair = spec.interleaved or self._free_channels()
                others = (s for i, s in self.setups.items() if i != track.desc.index)
                if any(s.interleaved and set(s.interleaved) & set(pair) for s in others):
                    continue
                answer = TransportSpec(protocol=spec.protocol, delivery="unicast", interleaved=pair,
                                       mode="RECORD")
                return _Setup(track, answer, interleaved=pair)
            if spec.client_port is not None:
                if sum(1 for i, s in self.setups.items() if s.udp is not None and i != track.desc.index) \
                        >= MAX_UDP_TRACKS:
                    raise ServiceUnavailable(f"at most {MAX_UDP_TRACKS} tracks over UDP per publisher")
                old = self.setups.get(track.desc.index)
                udp = self._bind_udp(spec.client_port, replacing=old is not None and old.udp is not None)
                answer = TransportSpec(protocol=spec.protocol, delivery="unicast",
                                       client_port=spec.client_port, server_port=udp.ports, mode="RECORD")
                return _Setup(track, answer, udp=udp)
        raise UnsupportedTransport("no offered transport can record here (TCP interleaved or unicast UDP)")

    def _free_channels(self) -> tuple[int, int]:
        used = {c for s in self.setups.values() if s.interleaved for c in s.interleaved}
        for a in range(0, 255, 2):
            if a not in used and a + 1 not in used:
                return a, a + 1
        raise UnsupportedTransport("no free interleaved channels")

    def _bind_udp(self, client_ports: tuple[int, int], replacing: bool) -> UdpPairReceiver:
        assert self.transport is not None
        local = self.transport.get_extra_info("sockname")
        bind_host = local[0] if local else "0.0.0.0"
        pool = self.host.ports
        peer = self.peer_host
        try:
            # 461 past the client's share of the shard's slice (hub.udp_ports)
            # or with the slice used up: publishers then set up over TCP.
            rtp, rtcp = pool.bind_for(peer, bind_host, replacing)
        except OSError as exc:
            raise UnsupportedTransport(str(exc)) from None
        return UdpPairReceiver(asyncio.get_running_loop(), rtp, rtcp, peer, client_ports, self.ingest.count,
                               lambda port: pool.release_for(peer, port))

    # -- going live -----------------------------------------------------------
    def _go_live(self) -> None:
        """Publish the tracks that were set up, in SDP order, as tracks 0..n-1."""
        assert self.sdp is not None
        chosen = [t for t in self.announced if t.desc.index in self.setups]
        ingest = self.ingest
        ingest.go_live(*published_tracks(self.sdp, chosen))
        for i, announced in enumerate(chosen):
            setup = self.setups[announced.desc.index]
            if setup.interleaved is not None:
                ingest.bind_interleaved(i, setup.interleaved)
            elif setup.udp is not None:
                setup.udp.rtp_sink, setup.udp.rtcp_sink = ingest.rtp_sinks(i)

    # -- closing ----------------------------------------------------------------
    def close(self) -> None:
        """End the session: its stream, its UDP ports and its connection.

        StreamTable.close (DELETE, a newer publisher) calls this too.
        """
        if self.closed:
            return
        if self._record_timer is not None:
            self._record_timer.cancel()
            self._record_timer = None
        self.ingest.close()
        for setup in self.setups.values():
            if setup.udp is not None:
                setup.udp.close()
        self.host.sessions.discard(self)
        super().close()
        log.info("%s: publisher %s closed", self.path, self.peer)
        for cb in self.host.on_closed:
            cb(self)
