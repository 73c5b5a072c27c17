"""Route pulls: an RTSP client that feeds an upstream stream into our ring.

A reader asks the owning shard for a path that is not live; if a route
matches it, `PullManager.ensure` starts (or joins) the `RoutePull` for that
path and waits until the stream is live, or fails with NotFound within the
connect timeout. The pull then lives on its own:

- `RtspPullSession` is one TCP connection to the upstream: OPTIONS,
  DESCRIBE (answering a 401 with Digest or Basic from the URL's
  credentials), SETUP of every track over TCP interleaved channels
  2i-(2i+1), PLAY; then `$` frames go to one `TrackIngest` per track, exactly
  as a publisher's do. It sends a keep-alive (GET_PARAMETER when the
  upstream's Public lists it, else OPTIONS) and a TEARDOWN when it ends.
- `RoutePull` reconnects while the path is wanted, backing off from 1 s to
  30 s: the reference gave up at the first error, a camera that reboots
  should come back by itself. A keepalive route is wanted while its route
  exists; any other one until `route_idle_timeout` seconds after its last
  reader (a front link or an in-process tap such as the HLS segmenter) left.
  Deleting the stream (`StreamTable.close` → `close()` of its source, the
  session) stops the pull for good, until a new reader asks.

Each outage ends the stream (players see the end) and each reconnect
publishes a new one on the same path: the upstream's SDP, clocks and
sequence numbers may all differ after a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import HubError, NotFound, ProtocolError, Unauthorized
from ..media.rtsp import (NEED_DATA, Headers, InterleavedFrame, Public, RtspReader, RtspRequest,
                          RtspResponse, SessionHeader, TransportSpec, authorization_for, pick_challenge)
from ..media.rtsp.auth import Challenge
from ..media.sdp import Sdp, resolve_control
from ..media.stream_desc import TrackDesc
from ..placement import canonical_path
from ..store.routes import mask_password
from .rtp_in import TrackIngest
from .sdp_tracks import AnnouncedTrack, announced_tracks, player_sdp
from .stream import Stream
from .streams import StreamTable

log = logging.getLogger("hub.shard.pull")

__all__ = ["PullManager", "RoutePull", "RtspPullSession", "UpstreamUrl", "RouteLookup"]

#: path → (upstream URL, keepalive) or None when no route applies.
RouteLookup = Callable[[str], "tuple[str, bool] | None"]

CONNECT_TIMEOUT = 5.0
KEEPALIVE_INTERVAL = 30.0
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
MAX_TICK = 1.0  # idle, data and keep-alive checks run at least this often
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
    idle_timeout: float = 300.0  # keepalive=false: close this long after the last reader
    session_timeout: float = 60.0  # no data from upstream for this long: reconnect
    keepalive_interval: float = KEEPALIVE_INTERVAL
    backoff_min: float = BACKOFF_MIN
    backoff_max: float = BACKOFF_MAX


class RtspPullSession(asyncio.Protocol):
    """One connection to the upstream, from OPTIONS to TEARDOWN.

    `start()` runs the handshake and returns the live stream; `ended` is set
    when the session is over, whatever the reason. `close()` is what
    `StreamTable.close` calls on the stream's source: it stops the whole
    pull, not just this connection.
    """

    def __init__(self, pull: RoutePull, up: UpstreamUrl) -> None:
        self.pull = pull
        self.up = up
        self.settings = pull.manager.settings
        self.clock = pull.manager.clock
        self.reader = RtspReader()
        self.transport: asyncio.Transport | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stream: Stream | None = None
        self.session_id: str | None = None
        self.keepalive_method = "OPTIONS"
        self.bytes_in = 0
        self.closed = False
        self.ingests: list[TrackIngest] = []
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[RtspResponse]] = {}
        self._channels: list[Callable[[bytes | memoryview], None] | None] = [None] * 256
        self._challenge: Challenge | None = None
        self._nc = 0
        self._seen = False
        self._last_data = 0.0
        self._last_keepalive = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._sdp: Sdp | None = None
        self._chosen: list[AnnouncedTrack] = []
        self._tracks: list[TrackDesc] = []

    # -- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        n = len(data)
        self.bytes_in += n
        self._seen = True
        stream = self.stream
        if stream is not None:
            stream.size += n
        reader = self.reader
        reader.feed(data)
        channels = self._channels
        try:
            while not self.closed:
                event = reader.next_event()
                if event is NEED_DATA:
                    return
                if event.__class__ is InterleavedFrame:
                    sink = channels[event.channel]
                    if sink is not None:
                        sink(event.payload)
                elif isinstance(event, RtspResponse):
                    self._on_response(event)
                elif isinstance(event, RtspRequest):
                    self._on_request(event)
        except ProtocolError as exc:
            self.end(exc, teardown=False)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.end(exc or ConnectionResetError("upstream closed the connection"), teardown=False)

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
        if transport is not None and not transport.is_closing():
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
        setups: list[tuple[AnnouncedTrack, tuple[int, int]]] = []
        for track in announced_tracks(sdp):
            ch = 2 * len(setups)
            offer = TransportSpec(protocol="RTP/AVP/TCP", delivery="unicast", interleaved=(ch, ch + 1))
            resp = await self.request("SETUP", resolve_control(base, track.control or None),
                                      [("Transport", str(offer))])
            if resp.status != 200:
                log.info("%s: upstream refused track %d (%s): %d", self.pull.path, track.desc.index,
                         track.desc.codec, resp.status)
                continue
            session = resp.headers.get("Session")
            if session is not None and self.session_id is None:
                header = SessionHeader.parse(session)
                self.session_id = header.id
                if header.timeout:
                    self._keepalive_every = min(self.settings.keepalive_interval, header.timeout * 0.5)
            pair = offer.interleaved
            answer = resp.headers.get("Transport")
            if answer:
                spec = TransportSpec.parse(answer.split(",", 1)[0])
                if spec.interleaved is not None:
                    pair = spec.interleaved
            assert pair is not None
            setups.append((track, pair))
        if not setups:
            raise NotFound("upstream accepted none of its tracks over TCP")
        self._go_live(sdp, setups)
        await self._expect_ok("PLAY", resolve_control(base, sdp.control), [("Range", "npt=0.000-")])
        if self.closed:  # the upstream hung up right after answering
            raise ConnectionResetError("upstream closed the connection after PLAY")
        now = self.clock()
        self._last_data = self._last_keepalive = now
        self._schedule_tick()
        assert self.stream is not None
        return self.stream

    _keepalive_every = KEEPALIVE_INTERVAL

    def _go_live(self, sdp: Sdp, setups: list[tuple[AnnouncedTrack, tuple[int, int]]]) -> None:
        """Publish before PLAY so frames that follow the PLAY answer in the
        same read already have their ingest."""
        chosen = [t for t, _ in setups]
        tracks = [dataclasses.replace(t.desc, index=i) for i, t in enumerate(chosen)]
        stream = self.pull.manager.streams.publish(self.pull.path, player_sdp(sdp, list(zip(chosen, tracks))),
                                                   tracks, addr=self.up.masked, source=self)
        self.stream = stream
        self._sdp, self._chosen, self._tracks = sdp, chosen, tracks
        audio_only = not any(t.kind == "video" for t in tracks)
        for i, ((_, pair), desc) in enumerate(zip(setups, tracks)):
            ingest = TrackIngest(stream, i, desc, audio_only=audio_only, on_params=self._params_changed,
                                 clock=self.clock)
            self.ingests.append(ingest)
            self._channels[pair[0]] = ingest.push_rtp
            self._channels[pair[1]] = ingest.push_rtcp

    def _params_changed(self, index: int, desc: TrackDesc) -> None:
        stream = self.stream
        if stream is None or stream.closed or self._sdp is None:
            return
        self._tracks[index] = desc
        stream.update_tracks(list(self._tracks), player_sdp(self._sdp, list(zip(self._chosen, self._tracks))))

    # -- liveness -------------------------------------------------------------------
    def _schedule_tick(self) -> None:
        s = self.settings
        interval = max(0.02, min(MAX_TICK, s.session_timeout / 4, s.idle_timeout / 4, self._keepalive_every / 2))
        self._timer = asyncio.get_running_loop().call_later(interval, self._tick)

    def _tick(self) -> None:
        """Data timeout, keep-alive and the owner's idle check, in one timer.

        Traffic only sets a flag; the clock is read here.
        """
        if self.closed:
            return
        now = self.clock()
        if self._seen:
            self._seen = False
            self._last_data = now
        elif now - self._last_data >= self.settings.session_timeout:
            self.end(NotFound(f"no data from upstream for {self.settings.session_timeout:g} s"), teardown=True)
            return
        if now - self._last_keepalive >= self._keepalive_every:
            self._last_keepalive = now
            self._send(self.keepalive_method, self.up.url)  # the answer is not awaited
        if self.stream is not None and not self.pull.tick(now, self.stream):
            return  # the pull stopped (and ended this session)
        self._schedule_tick()

    # -- closing --------------------------------------------------------------------
    def close(self) -> None:
        """The stream was deleted or replaced: stop the pull for good."""
        self.pull.stop("stream closed")

    def end(self, exc: BaseException | None, *, teardown: bool) -> None:
        """Over: the stream ends for its readers, the connection closes.

        The owner decides whether to reconnect (it awaits `ended`)."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._channels = [None] * 256
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionResetError(str(exc) if exc else "pull session closed"))
        self._pending.clear()
        stream = self.stream
        if stream is not None and not stream.closed:
            stream.close()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if teardown and self.session_id is not None:
                self._send("TEARDOWN", self.up.url)  # written before the close flushes
            transport.close()
        if not self.ended.done():
            self.ended.set_result(None)
        if exc is not None and stream is not None:
            log.info("%s: pull from %s ended: %s", self.pull.path, self.up.masked, exc)


class RoutePull:
    """The pull of one path: reconnects while wanted, publishes each time."""

    def __init__(self, manager: PullManager, path: str, url: str, keepalive: bool) -> None:
        self.manager = manager
        self.path = path
        self.url = url
        self.keepalive = keepalive
        self.session: RtspPullSession | None = None
        self.stopped = False
        self.connects = 0  # successful PLAYs, for tests and stats
        self.last_wanted = manager.clock()
        self.last_error: str = ""
        self._waiters: list[asyncio.Future[Stream]] = []
        self._poke = asyncio.Event()
        self._attempting = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pull {self.path}")

    @property
    def stream(self) -> Stream | None:
        s = self.session
        return s.stream if s is not None and s.stream is not None and not s.stream.closed else None

    def want(self) -> asyncio.Future[Stream]:
        """A reader asks: a future for the next live stream (or failure)."""
        self.last_wanted = self.manager.clock()
        fut: asyncio.Future[Stream] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if not self._attempting:
            self._poke.set()  # cut a backoff wait short
        return fut

    def _settle(self, stream: Stream | None, exc: BaseException | None) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if stream is not None:
                fut.set_result(stream)
            else:
                fut.set_exception(exc if isinstance(exc, NotFound) else NotFound(f"{self.path}: {exc}"))

    def wanted(self, now: float) -> bool:
        if self.stopped:
            return False
        return self.keepalive or bool(self._waiters) or now - self.last_wanted < self.manager.settings.idle_timeout

    def tick(self, now: float, stream: Stream) -> bool:
        """The live session's periodic check; False when the pull stopped."""
        match = self.manager.routes(self.path)
        self.keepalive = bool(match and match[1])  # a deleted route idles out
        if stream.readers or stream.taps:
            self.last_wanted = now
        elif not self.keepalive and now - self.last_wanted >= self.manager.settings.idle_timeout:
            self.stop("no readers")
            return False
        return True

    def stop(self, why: str) -> None:
        """For good: no reconnect; the session ends with a TEARDOWN."""
        if self.stopped:
            return
        self.stopped = True
        log.info("%s: stopping the pull from %s (%s)", self.path, mask_password(self.url), why)
        self._poke.set()
        if self.session is not None:
            self.session.end(None, teardown=True)
        self._settle(None, NotFound(f"{self.path}: pull stopped ({why})"))

    async def _run(self) -> None:
        settings = self.manager.settings
        backoff = settings.backoff_min
        try:
            while self.wanted(self.manager.clock()):
                match = self.manager.routes(self.path)
                if match is None:
                    self.stop("route removed")
                    break
                self.url, self.keepalive = match
                self._poke.clear()
                live = await self._attempt()
                if live:
                    backoff = settings.backoff_min
                if not self.wanted(self.manager.clock()):
                    break
                try:
                    await asyncio.wait_for(self._poke.wait(), backoff)
                except asyncio.TimeoutError:
                    pass
                if not live:
                    backoff = min(backoff * 2, settings.backoff_max)
        finally:
            self.stopped = True
            if self.session is not None:
                self.session.end(None, teardown=True)
            self._settle(None, NotFound(f"{self.path}: pull stopped"))
            self.manager._forget(self)

    async def _attempt(self) -> bool:
        """One connection: True if it went live (then waits for its end)."""
        self._attempting = True
        session: RtspPullSession | None = None
        try:
            up = UpstreamUrl.parse(self.url)
            loop = asyncio.get_running_loop()
            session = RtspPullSession(self, up)
            self.session = session
            tls = ssl.create_default_context() if up.tls else None
            await asyncio.wait_for(
                loop.create_connection(lambda: session, up.host, up.port, ssl=tls),
                self.manager.settings.connect_timeout)
            stream = await session.start()
        except (OSError, HubError, asyncio.TimeoutError) as exc:
            self._attempting = False
            why = str(exc) or exc.__class__.__name__
            if isinstance(exc, asyncio.TimeoutError):
                why = f"no connection within {self.manager.settings.connect_timeout:g} s"
            self.last_error = why
            log.info("%s: pull from %s failed: %s", self.path, mask_password(self.url), why)
            if session is not None:
                session.end(None, teardown=True)
            self._settle(None, NotFound(f"{self.path}: upstream not available ({why})"))
            return False
        except Exception as exc:  # a bug must not end the reconnect loop
            self._attempting = False
            self.last_error = repr(exc)
            log.exception("%s: pull attempt failed", self.path)
            if session is not None:
                session.end(None, teardown=True)
            self._settle(None, NotFound(f"{self.path}: upstream not available"))
            return False
        self._attempting = False
        self.connects += 1
        log.info("%s: pulling from %s", self.path, session.up.masked)
        self._settle(stream, None)
        await session.ended
        return True

    async def aclose(self) -> None:
        self.stop("shutting down")
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class PullManager:
    """The shard's route pulls, by canonical path.

    `routes` maps a path to (upstream URL, keepalive) or None; the shard
    builds it from its copy of the route table, tests pass a dict's get.
    """

    def __init__(self, streams: StreamTable, routes: RouteLookup, settings: PullSettings | None = None,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.streams = streams
        self.routes = routes
        self.settings = settings or PullSettings()
        self.clock = clock
        self.pulls: dict[str, RoutePull] = {}

    def __len__(self) -> int:
        return len(self.pulls)

    async def ensure(self, path: str) -> Stream:
        """The live stream of `path`, pulling it if a route matches.

        Joins a pull in progress; NotFound when no route applies or the
        upstream is not live within the connect timeout.
        """
        path = canonical_path(path)
        stream = self.streams.get(path)
        if stream is not None:
            return stream
        pull = self.pulls.get(path)
        if pull is None or pull.stopped:
            match = self.routes(path)
            if match is None:
                raise NotFound("404 page not found")
            pull = RoutePull(self, path, match[0], match[1])
            self.pulls[path] = pull
            pull.start()
        fut = pull.want()
        try:
            return await asyncio.wait_for(fut, self.settings.connect_timeout)
        except asyncio.TimeoutError:
            raise NotFound(f"{path}: upstream not live within {self.settings.connect_timeout:g} s") from None

    def start_keepalive(self, paths: Iterable[str]) -> None:
        """Start pulls for exact keepalive routes (at shard start)."""
        for path in paths:
            path = canonical_path(path)
            match = self.routes(path)
            if match is None or not match[1] or path in self.pulls:
                continue
            pull = RoutePull(self, path, match[0], True)
            self.pulls[path] = pull
            pull.start()

    def _forget(self, pull: RoutePull) -> None:
        if self.pulls.get(pull.path) is pull:
            del self.pulls[pull.path]

    def info(self) -> list[dict[str, Any]]:
        return [{"path": p.path, "url": mask_password(p.url), "keepalive": p.keepalive,
                 "live": p.stream is not None, "connects": p.connects, "error": p.last_error}
                for p in self.pulls.values()]

    async def aclose(self) -> None:
        """Stop every pull (TEARDOWN upstream) and await their tasks."""
        await asyncio.gather(*(p.aclose() for p in list(self.pulls.values())))
