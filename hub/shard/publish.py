"""RTSP publishers (ANNOUNCE/SETUP/RECORD) on connections handed to the shard.

A front reads a publisher's first request up to its ANNOUNCE and passes the
socket here with the bytes it read (`hub.ipc.handoff`); `PublishHost.handoff`
adopts it and a `RtspPublisher` carries on the conversation as if it had
accepted the connection itself. The stream goes live at RECORD, not at
ANNOUNCE, as ipchub does: a publisher that never gets to RECORD cannot
replace a live one.

The session's object split follows gortsplib: this module is the
connection and its requests; its `ingest.IngestSession` is the stream side
(tracks, ring entries, going live, parameter changes, counts and the idle
timeout), the same one a route pull uses; `udp_in.UdpPairReceiver` reads a
track's UDP ports; which method is valid when is `hub.media.rtsp.state`'s
to say.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, cast

from ..child import ChildArgs
from ..errors import (BadRequest, HubError, MethodNotValidInState, ProtocolError, ServiceUnavailable,
                      SessionNotFound, UnsupportedTransport)
from ..ipc.handoff import adopt_socket, already_read_of
from ..media.rtsp import Headers, RtspReader, RtspRequest, RtspResponse
from ..media.rtsp.session import SessionHeader
from ..media.rtsp.state import RtspMethod, RtspServerSession, RtspState, new_session_id, to_method
from ..media.rtsp.transport import Transport, TransportSpec
from ..media.sdp import Sdp
from ..placement import canonical_path
from ..udp_ports import PortPairPool
from .ingest import IngestSession
from .sdp_tracks import AnnouncedTrack, announced_tracks, published_tracks, track_for_uri
from .stream import Stream
from .streams import StreamTable
from .udp_in import UdpPairReceiver

log = logging.getLogger("hub.shard.publish")

__all__ = ["PublishHost", "RtspPublisher"]

M = RtspMethod
PUBLIC = "OPTIONS, ANNOUNCE, SETUP, RECORD, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
SERVER = "hub"
MAX_TICK = 5.0  # the idle check runs at least this often (a quarter of the timeout if shorter)


class PublishHost:
    """The shard's side of every publisher: config, stream table, UDP ports.

    Owns the hand-off tasks (cancelled on `close`) and the live sessions.
    """

    def __init__(self, args: ChildArgs, streams: StreamTable, *,
                 clock: Callable[[], float] = time.monotonic,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.args = args
        self.config = args.config
        self.streams = streams
        self.clock = clock
        self.random_bytes = random_bytes
        self.session_timeout = float(self.config.rtsp_session_timeout)
        self.sessions: set[RtspPublisher] = set()
        #: Called with each session as it closes (admission, access log: hub.shard.main).
        self.on_closed: list[Callable[[RtspPublisher], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
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

    def handoff(self, args: dict[str, Any], fd: int) -> asyncio.Task[RtspPublisher]:
        """A front's `handoff_rtsp`: adopt `fd` (ours from now on)."""
        path = canonical_path(str(args.get("path") or "/"))
        peer = str(args.get("peer") or "")
        user = str(args.get("user") or "")
        task = asyncio.get_running_loop().create_task(self.adopt(fd, path, peer, already_read_of(args), user))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("publisher hand-off failed: %s", task.exception())

    async def adopt(self, fd: int, path: str, peer: str, already_read: bytes, user: str = "") -> RtspPublisher:
        """Run a publisher session on a received socket, replaying `already_read`."""
        loop = asyncio.get_running_loop()
        _, proto = await adopt_socket(loop, fd, lambda: RtspPublisher(self, path, peer, user), already_read)
        assert isinstance(proto, RtspPublisher)
        return proto

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
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


class RtspPublisher(asyncio.Protocol):
    """One publisher's RTSP connection (and its UDP ports, if any): the
    requests here, the stream in `self.ingest`.

    The ingest's `bytes_in`, and the stream's `size` once live, count every
    byte received from the publisher: all bytes read on the TCP connection
    after the hand-off (the replayed ones included: requests, SDP, `$` frames
    with their 4-byte prefixes) plus the whole of every UDP datagram accepted
    on its RTP and RTCP ports. No bytes for the session timeout close it.
    """

    def __init__(self, host: PublishHost, path: str, peer: str, user: str = "") -> None:
        self.host = host
        self.path = path
        self.peer = peer
        self.user = user  # whose credentials the front checked (auth on)
        self.started = time.monotonic()
        self.peer_host = _split_peer(peer)
        self.clock = host.clock
        self.session = RtspServerSession(new_session_id(host.random_bytes), host.clock(),
                                         host.session_timeout)
        self.session_header = self.session.header
        self.reader = RtspReader()
        self.transport: asyncio.Transport | None = None
        self.sdp: Sdp | None = None
        self.announced: list[AnnouncedTrack] = []
        self.setups: dict[int, _Setup] = {}  # by announced index
        self.ingest = IngestSession(host.streams, path, peer, self, timeout=host.session_timeout,
                                    clock=host.clock)
        self.closed = False
        self._handlers: dict[RtspMethod, Callable[[RtspRequest, Headers], RtspResponse]] = {
            M.OPTIONS: self._options, M.ANNOUNCE: self._announce, M.SETUP: self._setup,
            M.RECORD: self._record, M.PAUSE: self._pause, M.TEARDOWN: self._teardown,
            M.GET_PARAMETER: self._keep_alive, M.SET_PARAMETER: self._keep_alive,
        }

    @property
    def stream(self) -> Stream | None:
        return self.ingest.stream

    # -- asyncio.Protocol -----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses: no isinstance check
        self.transport = cast(asyncio.Transport, transport)
        self.host.sessions.add(self)
        self.ingest.start(MAX_TICK)
        log.info("%s: publisher %s connected (session %s)", self.path, self.peer, self.session.id)

    def data_received(self, data: bytes) -> None:
        try:
            self.ingest.receive_rtsp(data, self.reader, self._on_message)
        except ProtocolError as exc:
            self._fail(None, exc)

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    # -- requests -------------------------------------------------------------
    def _on_message(self, req: RtspRequest | RtspResponse) -> None:
        if isinstance(req, RtspResponse):
            return  # a response to nothing we asked
        cseq = req.headers.get("CSeq")
        headers = Headers([("CSeq", cseq)] if cseq is not None else [])
        headers.add("Session", self.session_header)
        try:
            method = to_method(req.method)
            self._check(req, method)
            resp = self._handlers[method](req, headers)
        except ProtocolError as exc:
            self._fail(cseq, exc)
            return
        except HubError as exc:
            log.info("%s: %s %s -> %d %s", self.path, req.method, req.uri[:120], exc.rtsp_status, exc.message)
            resp = RtspResponse(exc.rtsp_status, headers=headers)
        self._send(resp)
        if req.method == "TEARDOWN" and resp.status == 200:
            self.close()

    def _check(self, req: RtspRequest, method: RtspMethod) -> None:
        """Session id and state, before the handler does anything.

        The shared state machine lets a fresh session SETUP as a player; a
        connection handed over for publishing never plays, so a SETUP before
        ANNOUNCE (and DESCRIBE/PLAY at any time) is 455 here.
        """
        value = req.headers.get("Session")
        if value is not None:
            if SessionHeader.parse(value).id != self.session.id:
                raise SessionNotFound(f"unknown session {value[:40]!r}")
        elif method in (M.RECORD, M.PAUSE, M.TEARDOWN) and self.session.state is not RtspState.INIT:
            raise SessionNotFound("request without the Session header")
        nxt = self.session.check(method)
        if method in (M.DESCRIBE, M.PLAY) or nxt in (RtspState.READY, RtspState.PLAYING):
            raise MethodNotValidInState(f"{method.value} on a publishing connection")

    def _send(self, resp: RtspResponse) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(bytes(resp))

    def _fail(self, cseq: str | None, exc: ProtocolError) -> None:
        """A malformed request: 400 and close (the byte stream is out of sync)."""
        log.info("%s: closing publisher %s: %s", self.path, self.peer, exc.message)
        headers = Headers([("CSeq", cseq)] if cseq is not None else [])
        headers.add("Session", self.session_header)
        self._send(RtspResponse(exc.rtsp_status, headers=headers))
        self.close()

    def _options(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        self.session.apply(M.OPTIONS, self.clock())
        headers.add("Public", PUBLIC)
        return RtspResponse(200, headers=headers)

    def _keep_alive(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        self.session.apply(to_method(req.method), self.clock())
        return RtspResponse(200, headers=headers)

    def _announce(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        ctype = (req.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/sdp":
            raise BadRequest(f"ANNOUNCE with Content-Type {ctype[:40]!r}, not application/sdp")
        sdp = Sdp.parse(req.body)
        self.announced = announced_tracks(sdp)
        self.sdp = sdp
        self.session.apply(M.ANNOUNCE, self.clock())
        return RtspResponse(200, headers=headers)

    def _setup(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        track = track_for_uri(self.announced, req.uri)
        raw = req.headers.get("Transport")
        if raw is None:
            raise UnsupportedTransport("SETUP without a Transport header")
        try:
            offers = Transport.parse(raw).specs
        except ProtocolError as exc:
            raise UnsupportedTransport(exc.message) from None
        index = track.desc.index
        old = self.setups.pop(index, None)
        if old is not None and old.udp is not None:
            old.udp.close()
        setup = self._pick_transport(track, offers)
        self.setups[index] = setup
        self.session.apply(M.SETUP, self.clock())
        headers.add("Transport", str(setup.answer))
        return RtspResponse(200, headers=headers)

    def _pick_transport(self, track: AnnouncedTrack, offers: list[TransportSpec]) -> _Setup:
        """The first offer we can record with: TCP interleaved or unicast UDP."""
        for spec in offers:
            if spec.mode not in (None, "RECORD") or spec.is_multicast:
                continue
            if spec.is_tcp:
                pair = spec.interleaved or self._free_channels()
                if any(s.interleaved and set(s.interleaved) & set(pair) for s in self.setups.values()):
                    continue
                answer = TransportSpec(protocol=spec.protocol, delivery="unicast", interleaved=pair,
                                       mode="RECORD")
                return _Setup(track, answer, interleaved=pair)
            if spec.client_port is not None:
                udp = self._bind_udp()
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

    def _bind_udp(self) -> UdpPairReceiver:
        assert self.transport is not None
        local = self.transport.get_extra_info("sockname")
        bind_host = local[0] if local else "0.0.0.0"
        pool = self.host.ports
        try:
            rtp, rtcp = pool.bind_pair(bind_host)
        except OSError as exc:
            raise ServiceUnavailable(str(exc)) from None
        return UdpPairReceiver(asyncio.get_running_loop(), rtp, rtcp, self.peer_host, self.ingest.count,
                               pool.release)

    def _record(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        if not self.ingest.live:
            self._go_live()
        self.session.apply(M.RECORD, self.clock())
        return RtspResponse(200, headers=headers)

    def _pause(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        self.session.apply(M.PAUSE, self.clock())
        return RtspResponse(200, headers=headers)

    def _teardown(self, req: RtspRequest, headers: Headers) -> RtspResponse:
        self.session.apply(M.TEARDOWN, self.clock())
        return RtspResponse(200, headers=headers)

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

        StreamTable.close (DELETE, a newer publisher) and the ingest's
        idle timeout call this too.
        """
        if self.closed:
            return
        self.closed = True
        self.ingest.close()
        for setup in self.setups.values():
            if setup.udp is not None:
                setup.udp.close()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.host.sessions.discard(self)
        log.info("%s: publisher %s closed", self.path, self.peer)
        for cb in self.host.on_closed:
            cb(self)

