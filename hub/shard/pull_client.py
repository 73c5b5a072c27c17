"""A route pull's RTSP client: one connection to the upstream.

OPTIONS, DESCRIBE (answering a 401 with Digest or Basic from the URL's
credentials), SETUP of every track over TCP interleaved channels 2i-(2i+1),
PLAY; then `$` frames go to the tracks of its `IngestSession`, exactly as a
publisher's do. An upstream that answers 461 to TCP (VLC's RTSP server,
cameras that only send UDP) gets the SETUPs again over UDP, as FFmpeg and
MediaMTX fall back: a port pair of the shard's slice per track, each
socket connected to the upstream's `server_port` (what the shard's UDP
publishers use, `udp_in.UdpPairReceiver`), RTSP staying on the TCP
connection for keep-alives and the TEARDOWN.

It sends a keep-alive (GET_PARAMETER when the upstream's Public lists it,
else OPTIONS) every `keepalive_interval`, or every half of the upstream's
session timeout when that is shorter, and a TEARDOWN when it ends.
Reconnecting is its owner's business (`hub.shard.pull.RoutePull`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import NotFound, ProtocolError, Unauthorized
from ..ipc.handoff import set_nodelay
from ..media.rtsp import (Headers, Public, RtspReader, RtspRequest, RtspResponse, SessionHeader, TransportSpec,
                          authorization_for, pick_challenge)
from ..media.rtsp.auth import Challenge
from ..media.sdp import Sdp, resolve_control
from ..store.routes import mask_password
from ..udp_ports import PortPairPool
from .ingest import IngestSession
from .read_gate import ReadGate
from .sdp_tracks import AnnouncedTrack, announced_tracks, published_tracks
from .stream import Stream
from .streams import StreamTable
from .udp_in import UdpPairReceiver

log = logging.getLogger("hub.shard.pull")

__all__ = ["PullOwner", "PullSettings", "RtspPullSession", "UpstreamUrl"]

CONNECT_TIMEOUT = 5.0
#: OPTIONS to PLAY's answer, each request also within the connect timeout: an
#: upstream that answers each just in time (35 requests for 32 tracks, each
#: maybe refused once with a 401) would otherwise hold the attempt for minutes.
HANDSHAKE_TIMEOUT = 10.0
KEEPALIVE_INTERVAL = 30.0
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
MAX_TICK = 1.0  # data, keep-alive and idle checks run at least this often
#: Our own bytes (requests, keep-alives, answers to its requests) queued for an
#: upstream that does not read them: past this the connection is dropped.
MAX_QUEUED = 1 << 20
USER_AGENT = "hub"
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}


@dataclass(frozen=True)
class UpstreamUrl:
    """A route's URL split into what we connect to, send, and show."""

    url: str  # without credentials: the request URI we send
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    masked: str  # rtsp://user:***@host/...: for the stream's addr and logs

    @classmethod
    def parse(cls, raw: str) -> UpstreamUrl:
        try:
            parts = urlsplit(raw.strip())
            port = parts.port
        except ValueError as exc:
            raise NotFound(f"route URL does not parse: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise NotFound(f"route URL {mask_password(raw)!r} is not rtsp://host/...")
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(url, parts.hostname, port or DEFAULT_PORTS[scheme], scheme == "rtsps",
                   user, password if user is not None else None, mask_password(raw))


@dataclass
class PullSettings:
    """Timeouts of the pull sessions; tests shorten them."""

    connect_timeout: float = CONNECT_TIMEOUT
    handshake_timeout: float = HANDSHAKE_TIMEOUT  # after the TCP (and TLS) connect
    idle_timeout: float = 300.0  # keepalive=false: close this long after the last reader
    session_timeout: float = 60.0  # no data from upstream for this long: reconnect
    keepalive_interval: float = KEEPALIVE_INTERVAL
    backoff_min: float = BACKOFF_MIN
    backoff_max: float = BACKOFF_MAX
    #: Reading in windows (`ingest_window`, `unwatched_ingest_window`): the shard's gate, shared with its publishers.
    read_gate: ReadGate | None = None
    #: The shard's RTP port pairs (its publishers' slice), for upstreams that
    #: only send over UDP; None: TCP only.
    udp_ports: Callable[[], PortPairPool] | None = None


class PullOwner(Protocol):
    """What a session needs of the pull that runs it (`hub.shard.pull.RoutePull`)."""

    path: str

    def tick(self, now: float, stream: Stream) -> None:
        """The live session's periodic check (readers, route still there)."""

    def stop(self, why: str) -> None:
        """Stop the pull for good (ends this session with a TEARDOWN)."""


class RtspPullSession(asyncio.Protocol):
    """One connection to the upstream, from OPTIONS to TEARDOWN.

    The RTSP client conversation is here; the stream side (tracks, ring
    entries, going live, parameter changes, counts, the data timeout and the
    one tick) is its `ingest`, the session a publisher uses too.
    `start()` runs the handshake and returns the live stream; `ended` is set
    when the session is over, whatever the reason. `close()` is what
    `StreamTable.close` calls on the stream's source: it stops the whole
    pull, not just this connection.
    """

    def __init__(self, owner: PullOwner, up: UpstreamUrl, streams: StreamTable, settings: PullSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.owner = owner
        self.up = up
        self.settings = settings
        self.clock = clock
        self.reader = RtspReader()
        self.transport: asyncio.Transport | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.session_id: str | None = None
        self.keepalive_method = "OPTIONS"
        # The interval, or half the upstream's session timeout when that is shorter.
        self.keepalive_every = settings.keepalive_interval
        self.closed = False
        self.ingest = IngestSession(streams, owner.path, up.masked, self, timeout=settings.session_timeout,
                                    clock=clock, on_timeout=self._timed_out, on_tick=self._tick)
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[RtspResponse]] = {}
        self._challenge: Challenge | None = None
        self._nc = 0
        self._last_keepalive = 0.0
        self._udp: list[UdpPairReceiver] = []  # the tracks set up over UDP, if the upstream wanted that

    @property
    def stream(self) -> Stream | None:
        return self.ingest.stream

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        set_nodelay(transport)
        self.ingest.read_in_windows(self.settings.read_gate, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.ingest.receive_rtsp(data, self.reader, self._on_message)
        except ProtocolError as exc:
            self.end(exc, teardown=False)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.end(exc or ConnectionResetError("upstream closed the connection"), teardown=False)

    def _on_message(self, msg: RtspRequest | RtspResponse) -> None:
        if isinstance(msg, RtspRequest):
            self._on_request(msg)
        else:
            self._on_response(msg)

    def _on_response(self, resp: RtspResponse) -> None:
        try:
            cseq = resp.cseq
        except ProtocolError:
            return
        fut = self._pending.pop(cseq, None) if cseq is not None else None
        if fut is not None and not fut.done():
            fut.set_result(resp)

    def _on_request(self, req: RtspRequest) -> None:
        """Servers rarely ask the client anything; keep-alives get 200."""
        status = 200 if req.method in ("OPTIONS", "GET_PARAMETER") else 501
        headers = Headers()
        cseq = req.headers.get("CSeq")
        if cseq is not None:
            headers.add("CSeq", cseq)
        self._write(bytes(RtspResponse(status, headers=headers)))

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_QUEUED:
            transport.abort()  # close() would wait for the upstream to read it all
            self.end(ProtocolError("upstream does not read what we send"), teardown=False)
            return
        transport.write(data)

    # -- requests ---------------------------------------------------------------
    def _send(self, method: str, uri: str, extra: Iterable[tuple[str, str]] = ()) -> int:
        """Write one request; its CSeq."""
        self._cseq += 1
        headers = Headers([("CSeq", str(self._cseq)), ("User-Agent", USER_AGENT)])
        if self._challenge is not None and self.up.username is not None:
            self._nc += 1
            headers.add("Authorization", authorization_for(
                self._challenge, self.up.username, self.up.password or "", method, uri, nc=self._nc))
        if self.session_id is not None:
            headers.add("Session", self.session_id)
        for k, v in extra:
            headers.add(k, v)
        self._write(bytes(RtspRequest(method, uri, headers=headers)))
        return self._cseq

    async def _exchange(self, method: str, uri: str, extra: Iterable[tuple[str, str]]) -> RtspResponse:
        if self.closed:
            raise ConnectionResetError("upstream connection is closed")
        cseq = self._send(method, uri, extra)
        if self.closed:  # the write found the upstream not reading
            raise ConnectionResetError("upstream connection is closed")
        fut: asyncio.Future[RtspResponse] = asyncio.get_running_loop().create_future()
        self._pending[cseq] = fut
        try:
            return await asyncio.wait_for(fut, self.settings.connect_timeout)
        except asyncio.TimeoutError:
            raise NotFound(f"upstream did not answer {method} within {self.settings.connect_timeout:g} s") from None
        finally:
            self._pending.pop(cseq, None)

    async def request(self, method: str, uri: str, extra: Iterable[tuple[str, str]] = ()) -> RtspResponse:
        """Send and await the answer; a 401 is answered once with the URL's
        credentials (a fresh challenge each time, so a stale nonce heals)."""
        extra = list(extra)
        resp = await self._exchange(method, uri, extra)
        if resp.status == 401 and self.up.username is not None:
            self._challenge = pick_challenge(resp.headers.get_all("WWW-Authenticate"))
            self._nc = 0
            resp = await self._exchange(method, uri, extra)
        if resp.status == 401:
            what = "refused the credentials" if self.up.username is not None else "asks for credentials"
            raise Unauthorized(f"upstream {what} ({method})")
        return resp

    async def _expect_ok(self, method: str, uri: str, extra: Iterable[tuple[str, str]] = ()) -> RtspResponse:
        resp = await self.request(method, uri, extra)
        if resp.status != 200:
            raise NotFound(f"upstream answered {resp.status} {resp.reason} to {method}")
        return resp

    # -- the handshake ------------------------------------------------------------
    async def start(self) -> Stream:
        """OPTIONS, DESCRIBE, SETUP each track, publish, PLAY; the live stream."""
        url = self.up.url
        opts = await self.request("OPTIONS", url)
        if opts.status == 200 and "GET_PARAMETER" in Public.parse(opts.headers.get("Public") or ""):
            self.keepalive_method = "GET_PARAMETER"
        desc = await self._expect_ok("DESCRIBE", url, [("Accept", "application/sdp")])
        sdp = Sdp.parse(desc.body)
        base = (desc.headers.get("Content-Base") or desc.headers.get("Content-Location") or url).strip()
        setups: list[tuple[AnnouncedTrack, tuple[int, int] | UdpPairReceiver]] = []
        over_udp = False
        for track in announced_tracks(sdp):
            uri = resolve_control(base, track.control or None)
            if not over_udp:
                ch = 2 * len(setups)
                offer = TransportSpec(protocol="RTP/AVP/TCP", delivery="unicast", interleaved=(ch, ch + 1))
                resp = await self.request("SETUP", uri, [("Transport", str(offer))])
                over_udp = resp.status == 461 and not setups and self.settings.udp_ports is not None
            if over_udp:
                udp = await self._setup_udp(uri)
                if udp is not None:
                    setups.append((track, udp))
                continue
            if resp.status != 200:
                log.info("%s: upstream refused track %d (%s): %d", self.owner.path, track.desc.index,
                         track.desc.codec, resp.status)
                continue
            self._session_from(resp)
            pair = offer.interleaved
            answer = resp.headers.get("Transport")
            if answer:
                spec = TransportSpec.parse(answer.split(",", 1)[0])
                if spec.interleaved is not None:
                    pair = spec.interleaved
            assert pair is not None
            setups.append((track, pair))
        if not setups:
            raise NotFound(f"upstream accepted none of its tracks over {'UDP' if over_udp else 'TCP'}")
        self._go_live(sdp, setups)
        # No Range: for a live source it is optional (RFC 2326 12.29, ONVIF's
        # streaming spec), and `npt=0.000-` asks for the start: GStreamer's
        # RTSP server then restarts a shared media, so every other client of
        # the camera (an NVR, another route) saw its timestamps go back.
        await self._expect_ok("PLAY", resolve_control(base, sdp.control))
        if self.closed:  # the upstream hung up right after answering
            raise ConnectionResetError("upstream closed the connection after PLAY")
        self._last_keepalive = self.clock()
        self.ingest.start(min(MAX_TICK, self.settings.idle_timeout / 4, self.keepalive_every / 2))
        assert self.stream is not None
        return self.stream

    async def _setup_udp(self, uri: str) -> UdpPairReceiver | None:
        """SETUP one track over UDP: a pair of the shard's slice, its sockets
        connected to the upstream's `server_port`; None if it refused."""
        assert self.settings.udp_ports is not None
        pool = self.settings.udp_ports()
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        host = str(peer[0]) if peer else self.up.host  # where the media comes from: the upstream's address
        try:
            # An upstream we were told to pull is not a stranger: no per-client share.
            rtp, rtcp = pool.bind_pair("::" if ":" in host else "0.0.0.0")
        except OSError as exc:
            raise NotFound(f"no UDP port pair for the upstream: {exc}") from None
        port = int(rtp.getsockname()[1])
        answer: TransportSpec | None = None
        try:
            offer = TransportSpec(protocol="RTP/AVP", delivery="unicast", client_port=(port, port + 1))
            resp = await self.request("SETUP", uri, [("Transport", str(offer))])
            if resp.status == 200:
                answer = TransportSpec.parse((resp.headers.get("Transport") or "").split(",", 1)[0])
        finally:
            if answer is None or answer.server_port is None:  # refused, or the request failed
                rtp.close()
                rtcp.close()
                pool.release(port)
        if answer is None or answer.server_port is None:
            log.info("%s: upstream refused a track over UDP: %d", self.owner.path, resp.status)
            return None
        self._session_from(resp)
        udp = UdpPairReceiver(asyncio.get_running_loop(), rtp, rtcp, host, answer.server_port,
                              self.ingest.count, pool.release)
        self._udp.append(udp)
        return udp

    def _session_from(self, resp: RtspResponse) -> None:
        """The upstream's session id (and timeout) from its first SETUP answer."""
        session = resp.headers.get("Session")
        if session is not None and self.session_id is None:
            header = SessionHeader.parse(session)
            self.session_id = header.id
            if header.timeout:
                self.keepalive_every = min(self.settings.keepalive_interval, header.timeout * 0.5)

    def _go_live(self, sdp: Sdp, setups: list[tuple[AnnouncedTrack, tuple[int, int] | UdpPairReceiver]]) -> None:
        """Publish before PLAY so frames that follow the PLAY answer in the
        same read already have their ingest."""
        ingest = self.ingest
        ingest.go_live(*published_tracks(sdp, [t for t, _ in setups]))
        for i, (_, how) in enumerate(setups):
            if isinstance(how, UdpPairReceiver):
                how.rtp_sink, how.rtcp_sink = ingest.rtp_sinks(i)
            else:
                ingest.bind_interleaved(i, how)

    # -- liveness: the ingest's tick --------------------------------------------------
    def _timed_out(self) -> None:
        self.end(NotFound(f"no data from upstream for {self.settings.session_timeout:g} s"), teardown=True)

    def _tick(self, now: float) -> None:
        """Keep-alive and the owner's idle check, on the ingest's one timer."""
        if now - self._last_keepalive >= self.keepalive_every:
            self._last_keepalive = now
            self._send(self.keepalive_method, self.up.url)  # the answer is not awaited
        stream = self.ingest.stream
        if stream is not None:
            self.owner.tick(now, stream)

    # -- closing --------------------------------------------------------------------
    def close(self) -> None:
        """The stream was deleted or replaced: stop the pull for good."""
        self.owner.stop("stream closed")

    def end(self, exc: BaseException | None, *, teardown: bool) -> None:
        """Over: the stream ends for its readers, the connection closes.

        The owner decides whether to reconnect (it awaits `ended`)."""
        if self.closed:
            return
        self.closed = True
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionResetError(str(exc) if exc else "pull session closed"))
        self._pending.clear()
        stream = self.ingest.stream
        self.ingest.close()
        for udp in self._udp:
            udp.close()
        self._udp.clear()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if teardown and self.session_id is not None:
                self._send("TEARDOWN", self.up.url)  # written before the close flushes
            transport.close()
        if not self.ended.done():
            self.ended.set_result(None)
        if exc is not None and stream is not None:
            log.info("%s: pull from %s ended: %s", self.owner.path, self.up.masked, exc)
