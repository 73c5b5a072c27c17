"""Route pulls: an upstream RTSP stream fed into our ring while it is wanted.

A reader asks the owning shard for a path that is not live; if a route
matches it, `PullManager.ensure` starts (or joins) the `RoutePull` for that
path and waits until the stream is live, or fails with NotFound within the
connect timeout. The pull then lives on its own:

- `hub.shard.pull_client.RtspPullSession` is one TCP connection to the
  upstream (the RTSP client; its stream side is an `IngestSession`, as a
  publisher's is).
- `RoutePull` reconnects while the path is wanted, backing off from 1 s to
  30 s: the reference gave up at the first error, a camera that reboots
  should come back by itself. A keepalive route is wanted while its route
  exists; any other one until `route_idle_timeout` seconds after its last
  reader (a front link or an in-process tap such as the HLS segmenter) left
  — once it has been live: one that fails before it ever went live stops
  there (its askers got NotFound; the next ask starts a new pull).
  Deleting the stream (`StreamTable.close` → `close()` of its source, the
  session) stops the pull for good, until a new reader asks.

Each outage ends the stream (players see the end) and each reconnect
publishes a new one on the same path: the upstream's SDP, clocks and
sequence numbers may all differ after a restart.

In a cluster (`relays` set, hub.shard.cluster) a pull may also be a relay:
a path that another node holds is pulled from that node (its RTSP address,
the cluster's relay credential) however the route table reads, one pull per
path per node. Each reconnect asks again where the path is, so a relay
retries only while the directory lists the stream (and follows it to a new
owner), and a routed path whose owner went away is pulled from its camera
here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Iterable

from ..errors import HubError, NotFound
from ..placement import canonical_path
from ..store.routes import mask_password
from .pull_client import PullSettings, RtspPullSession, UpstreamUrl
from .stream import Stream
from .streams import StreamTable

log = logging.getLogger("hub.shard.pull")

__all__ = ["PullManager", "PullSettings", "PullSource", "RoutePull", "RtspPullSession", "UpstreamUrl",
           "RouteLookup", "RelayLookup"]

#: A relay without data from the owning node for this long reconnects (or stops).
RELAY_SESSION_TIMEOUT = 10.0

#: path → (upstream URL, keepalive) or None when no route applies.
RouteLookup = Callable[[str], "tuple[str, bool] | None"]


@dataclass(frozen=True)
class PullSource:
    """Where a pull connects: a route's upstream, or another node (`origin`)."""

    url: str
    keepalive: bool = False
    origin: str = ""  # the node relayed from; "" for a route


#: (path, a route applies) → the node that holds the path, or None (pull it here, if routed).
RelayLookup = Callable[[str, bool], Awaitable["PullSource | None"]]


class RoutePull:
    """The pull of one path: reconnects while wanted, publishes each time."""

    def __init__(self, manager: PullManager, path: str, url: str, keepalive: bool, origin: str = "") -> None:
        self.manager = manager
        self.path = path
        self.url = url
        self.keepalive = keepalive
        self.origin = origin  # a relay: the node pulled from
        self.session: RtspPullSession | None = None
        self.stopped = False
        self.connects = 0  # successful PLAYs, for tests and stats
        self.last_wanted = manager.clock()
        self.last_attempt = -1e9  # when the last connection attempt started
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

    @property
    def state(self) -> str:
        """`live`, `connecting`, or `backoff` (waiting to try again), for the metrics."""
        if self.stream is not None:
            return "live"
        return "connecting" if self._attempting else "backoff"

    def want(self) -> asyncio.Future[Stream]:
        """A reader asks: a future for the next live stream (or failure)."""
        self.last_wanted = self.manager.clock()
        fut: asyncio.Future[Stream] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if not self._attempting and self.manager.clock() - self.last_attempt >= self.manager.settings.backoff_min:
            # Cut a back-off wait short, but readers asking over and over
            # reach the upstream no more than once per shortest back-off.
            self._poke.set()
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

    def tick(self, now: float, stream: Stream) -> None:
        """The live session's periodic check: no readers for the idle time stops it."""
        if not self.origin:  # a relay idles out whatever the route says
            match = self.manager.routes(self.path)
            self.keepalive = bool(match and match[1])  # a deleted route idles out
        if stream.readers or stream.taps:
            self.last_wanted = now
        elif not self.keepalive and now - self.last_wanted >= self.manager.settings.idle_timeout:
            self.stop("no readers")

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
        first = True
        try:
            while self.wanted(self.manager.clock()):
                if not first and not await self._where():
                    break
                first = False
                self._poke.clear()
                live = await self._attempt()
                if live:
                    backoff = settings.backoff_min
                elif not self.connects and not self.keepalive and not self._waiters:
                    # Never live and its asker told: nobody is owed a retry. A
                    # directory route takes any name under it, so retrying would
                    # let each guessed name reconnect upstream for the idle time.
                    self.manager.failed(self.path)
                    self.stop("upstream not available")
                    break
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

    async def _where(self) -> bool:
        """Before a reconnect: where the path is pulled from now (False: stopped)."""
        if self.manager.relays is not None and self.manager.streams.get(self.path) is not None:
            self.stop("live from another source")  # a cluster's pull never replaces a stream
            return False
        source = await self.manager.resolve(self.path)
        if source is None:
            self.stop("no longer in the directory" if self.origin else "route removed")
            return False
        self.url, self.keepalive, self.origin = source.url, source.keepalive, source.origin
        return True

    async def _attempt(self) -> bool:
        """One connection: True if it went live (then waits for its end)."""
        self._attempting = True
        self.last_attempt = self.manager.clock()
        session: RtspPullSession | None = None
        try:
            up = UpstreamUrl.parse(self.url)
            loop = asyncio.get_running_loop()
            settings = self.manager.settings
            if self.origin:  # another node sends media all the time: silence means it is gone
                settings = replace(settings, session_timeout=min(settings.session_timeout, RELAY_SESSION_TIMEOUT))
            session = RtspPullSession(self, up, self.manager.streams, settings, self.manager.clock)
            self.session = session
            tls = ssl.create_default_context() if up.tls else None
            await asyncio.wait_for(
                loop.create_connection(lambda: session, up.host, up.port, ssl=tls),
                self.manager.settings.connect_timeout)
            try:
                stream = await asyncio.wait_for(session.start(), settings.handshake_timeout)
            except asyncio.TimeoutError:
                raise NotFound(f"upstream handshake not done within {settings.handshake_timeout:g} s") from None
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


#: Paths remembered as just failed (`PullManager.failed`).
MAX_FAILED = 4096


class PullManager:
    """The shard's route pulls, by canonical path.

    `routes` maps a path to (upstream URL, keepalive) or None; the shard
    builds it from its copy of the route table, tests pass a dict's get.
    """

    def __init__(self, streams: StreamTable, routes: RouteLookup, settings: PullSettings | None = None,
                 *, clock: Callable[[], float] = time.monotonic, relays: RelayLookup | None = None) -> None:
        self.streams = streams
        self.routes = routes
        #: A cluster's directory (hub.shard.cluster): asked first, for every pull.
        self.relays = relays
        self.settings = settings or PullSettings()
        self.clock = clock
        self.pulls: dict[str, RoutePull] = {}
        #: Paths whose pull failed before going live, by when (oldest first).
        self._failed: dict[str, float] = {}

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
            source = await self.resolve(path)
            stream = self.streams.get(path)  # it may have gone live meanwhile
            if stream is not None:
                return stream
            pull = self.pulls.get(path)  # or another asker started its pull meanwhile
            if pull is None or pull.stopped:
                if source is None:
                    raise NotFound("404 page not found")
                tried = self._failed.get(path)
                if tried is not None and self.clock() - tried < self.settings.backoff_min:
                    # Its last pull failed just now: askers flooding one path
                    # (a player's retries, a dead camera) reach the upstream
                    # once per shortest back-off, not once per ask.
                    raise NotFound(f"{path}: upstream not available")
                pull = RoutePull(self, path, source.url, source.keepalive, source.origin)
                self.pulls[path] = pull
                pull.start()
        fut = pull.want()
        try:
            return await asyncio.wait_for(fut, self.settings.connect_timeout)
        except asyncio.TimeoutError:
            raise NotFound(f"{path}: upstream not live within {self.settings.connect_timeout:g} s") from None

    async def resolve(self, path: str) -> PullSource | None:
        """Where to pull `path` from: the node that holds it (a cluster), else its route."""
        match = self.routes(path)
        if self.relays is not None:
            try:
                relay = await self.relays(path, match is not None)
            except HubError as e:  # the directory is out of reach: our own route only
                log.info("%s: cluster directory not asked (%s)", path, e)
            else:
                if relay is not None:
                    return relay
        return None if match is None else PullSource(match[0], match[1])

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

    def failed(self, path: str) -> None:
        """A pull of `path` that never went live failed just now."""
        now = self.clock()
        self._failed.pop(path, None)
        self._failed[path] = now
        while self._failed:  # forget what no longer holds anyone back, and past MAX_FAILED
            oldest, t = next(iter(self._failed.items()))
            if now - t < self.settings.backoff_min and len(self._failed) <= MAX_FAILED:
                break
            del self._failed[oldest]

    def _forget(self, pull: RoutePull) -> None:
        if self.pulls.get(pull.path) is pull:
            del self.pulls[pull.path]

    def info(self) -> list[dict[str, Any]]:
        return [{"path": p.path, "url": mask_password(p.url), "keepalive": p.keepalive,
                 "live": p.stream is not None, "connects": p.connects, "error": p.last_error,
                 **({"relay_from": p.origin} if p.origin else {})}
                for p in self.pulls.values()]

    async def aclose(self) -> None:
        """Stop every pull (TEARDOWN upstream) and await their tasks."""
        await asyncio.gather(*(p.aclose() for p in list(self.pulls.values())))
