"""A front's view of the streams its players watch.

One `StreamView` per stream per front: it holds the ring reader (attached to
the owning shard's segment), copies each new entry out once, and hands the
batch to one fan-out per output format (FLV, WS-FLV, RTP ...), which muxes it
once and writes the same bytes to every player of that format.

The shard wakes the view with a coalesced `wake` notice; nothing polls.

With a coalescing window (`fanout_window`, ms) a woken view fans out at
once and then at most once per window: wakes within the window only mark
it, and the window's end reads everything that came meanwhile and hands
it on as one batch, so each player gets one write per window instead of
one per frame (fewer syscalls, the cost of big audiences, for at most a
window of added latency). One timer per view, and only while frames come;
nothing per player.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar

from ...errors import NotFound
from ...heap import HeapTrimmer
from ...ipc import messages as M
from ...logs import log_access
from ...media.stream_desc import StreamDesc
from ...placement import canonical_path
from ...ring import RingEntry, RingReader
from .consumer import Consumer

if TYPE_CHECKING:
    from ...config import Config
    from ..shards import ShardLinks

log = logging.getLogger("hub.api.play.views")

#: Entries read per ring pass (a pass repeats until the ring is drained).
READ_BATCH = 512
#: How long the owning shard may take to open a stream (a route pull may
#: take its connect timeout, 5 s, to answer).
OPEN_TIMEOUT = 8.0
#: A view nobody joined (an RTSP DESCRIBE without PLAY, every asker gone
#: while it opened) is closed after this long; one that had players closes
#: when the last one leaves.
UNUSED_VIEW_TTL = 60.0


class Fanout(Protocol):
    consumers: list[Consumer]

    def feed(self, entries: list[RingEntry]) -> None: ...

    def on_desc(self, desc: StreamDesc) -> None: ...


F = TypeVar("F", bound=Fanout)


class StreamView:
    def __init__(self, views: StreamViews, desc: StreamDesc, reader: RingReader) -> None:
        self.views = views
        self.desc = desc
        self.reader = reader
        self.fanouts: dict[str, Fanout] = {}
        self.closed = False
        self._refreshing: asyncio.Task[None] | None = None
        self._unused_timer = asyncio.get_running_loop().call_later(UNUSED_VIEW_TTL, self._close_if_unused)
        self._window: asyncio.TimerHandle | None = None  # a window is open (fanout_window)
        self._woken = False  # woken during the open window

    @property
    def stream_id(self) -> int:
        return self.desc.stream_id

    def fanout(self, key: str, factory: Callable[[StreamView], F]) -> F:
        """The fan-out for one output format; NotFound once the view closed
        (the stream ended between a player's open and its join)."""
        if self.closed:
            raise NotFound("404 page not found")
        f = self.fanouts.get(key)
        if f is None:
            f = factory(self)
            self.fanouts[key] = f
        return f  # type: ignore[return-value]

    def consumers(self) -> list[Consumer]:
        return [c for f in self.fanouts.values() for c in f.consumers]

    def gop(self, to_head: bool = False) -> list[RingEntry]:
        """Entries from the ring's last keyframe up to what the view has read
        (what a joining player needs to show a picture at once), or, with
        `to_head`, up to the ring's newest entry (what the stream is like
        now, even if the view has not been woken since it opened)."""
        if not self.views.config.cache_gop or self.closed:
            return []
        with RingReader.attach(self.reader.name) as r:
            r.seek_last_keyframe()
            out: list[RingEntry] = []
            stop = 1 << 63 if to_head else self.reader.next_seq
            while True:
                batch = r.read(READ_BATCH)
                if not batch:
                    break
                for e in batch:
                    if e.seq >= stop:
                        return out
                    out.append(e)
            return out

    def wake(self) -> None:
        """New entries in the ring: fan them out now, or at the end of the
        coalescing window if one is open."""
        window = self.views.config.fanout_window
        if window <= 0:
            self.pump()
        elif self._window is not None:
            self._woken = True
        else:
            self.pump()
            if not self.closed:
                self._window = asyncio.get_running_loop().call_later(window / 1000, self._window_end)

    def _window_end(self) -> None:
        self._window = None
        if self._woken and not self.closed:
            self._woken = False
            self.wake()  # what came during the window, and a new window

    def pump(self) -> None:
        """Read everything new and fan it out."""
        if self.closed:
            return
        while True:
            entries = self.reader.read(READ_BATCH)
            if not entries:
                break
            for f in list(self.fanouts.values()):
                f.feed(entries)
            if self.closed:  # its last player left while being fed
                return
            if len(entries) < READ_BATCH:
                break
        if self.reader.description_version != self.desc.version and self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        if self.reader.closed:
            self.close()

    async def _refresh(self) -> None:
        try:
            wire = await self.views.shards.request(self.desc.path, M.DESCRIBE({"stream_id": self.stream_id}))
            desc = StreamDesc.from_wire(wire)
            if desc.stream_id == self.stream_id:
                self.desc = desc
                for f in self.fanouts.values():
                    f.on_desc(desc)
        except Exception as e:  # the stream may have ended meanwhile
            log.debug("refresh of %s failed: %s", self.desc.path, e)
        finally:
            self._refreshing = None

    def _close_if_unused(self) -> None:
        if not self.consumers():
            self.close()

    def drop_consumer(self, c: Consumer) -> None:
        for f in self.fanouts.values():
            if c in f.consumers:
                f.consumers.remove(c)
        self.views.retire(self.desc.path, c)
        if not self.consumers():
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._unused_timer.cancel()
        if self._window is not None:
            self._window.cancel()
            self._window = None
        for c in self.consumers():
            c.close()
            self.views.retire(self.desc.path, c)
        self.fanouts.clear()
        self.views.forget(self)
        self.views.laps += self.reader.lapped
        self.reader.close()
        if self._refreshing is not None:
            self._refreshing.cancel()


class StreamViews:
    """The front's registry of stream views, by stream id and by path."""

    def __init__(self, shards: ShardLinks, config: Config) -> None:
        self.shards = shards
        self.config = config
        self.by_id: dict[int, StreamView] = {}
        self.by_path: dict[str, StreamView] = {}
        self._opening: dict[str, asyncio.Task[StreamView]] = {}
        # What players that left counted (the metrics add the live ones).
        self.ended: Counter[str] = Counter()  # sessions by protocol
        self.ended_out: Counter[str] = Counter()  # bytes out by path
        self.skips = 0
        self.aborts = 0
        self.laps = 0  # of the rings' readers of closed views
        # Players that leave free what malloc keeps: give it back (hub.heap).
        self.heap = HeapTrimmer()

    async def open(self, path: str) -> StreamView:
        """The view of a live stream (NotFound if it is not live).

        Everyone asking for a stream that is being opened waits for the same
        open, which runs as a task of its own: a client that leaves cancels
        only its own wait, never the open the others are waiting for."""
        path = canonical_path(path)
        view = self.by_path.get(path)
        if view is not None and not view.closed:
            return view
        task = self._opening.get(path)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open(path), name=f"open {path}")
            self._opening[path] = task
            task.add_done_callback(lambda t: self._opened(path, t))
        return await asyncio.shield(task)

    def _opened(self, path: str, task: asyncio.Task[StreamView]) -> None:
        if self._opening.get(path) is task:
            del self._opening[path]
        if not task.cancelled():
            task.exception()  # retrieved here: a failure nobody waits for any more is not an error

    async def _open(self, path: str) -> StreamView:
        wire = await self.shards.request(path, M.OPEN_STREAM({"path": path}), timeout=OPEN_TIMEOUT)
        desc = StreamDesc.from_wire(wire)
        try:
            reader = RingReader.attach(desc.ring)
        except FileNotFoundError:  # it ended between the answer and now
            raise NotFound("404 page not found") from None
        reader.seek_latest()
        view = StreamView(self, desc, reader)
        old = self.by_id.get(desc.stream_id)
        if old is not None:
            old.close()
        self.by_id[desc.stream_id] = view
        self.by_path[path] = view
        return view

    def close(self) -> None:
        """Stop the opens under way and close every view (the front is stopping)."""
        for task in list(self._opening.values()):
            task.cancel()
        for view in list(self.by_id.values()):
            view.close()
        self.heap.close()

    def on_wake(self, streams: dict[Any, Any]) -> None:
        for sid in streams:
            view = self.by_id.get(int(sid))
            if view is not None:
                view.wake()

    def on_stream_ended(self, stream_id: int) -> None:
        view = self.by_id.get(stream_id)
        if view is not None:
            view.pump()
            view.close()

    def forget(self, view: StreamView) -> None:
        if self.by_id.get(view.stream_id) is view:
            del self.by_id[view.stream_id]
        if self.by_path.get(view.desc.path) is view:
            del self.by_path[view.desc.path]
        self.shards.notify(view.desc.path, M.RELEASE_STREAM({"stream_id": view.stream_id}))
        if not self.by_id:
            self.heap.quiet()

    def retire(self, path: str, c: Consumer) -> None:
        """A player left: keep its counts, release its admission, log its session."""
        if c.retired:
            return
        c.retired = True
        protocol = c.protocol
        self.ended[protocol] += 1
        self.ended_out[path] += c.outbytes
        self.skips += c.skips
        self.aborts += c.aborted
        if c.ticket is not None:
            c.ticket.release()
        self.heap.busy()
        log_access("player", path=path, protocol=protocol, remote=c.remote, user=c.user,
                   duration=round(time.monotonic() - c.started, 3), bytes=c.outbytes)

    def all_consumers(self) -> list[tuple[StreamView, Consumer]]:
        return [(v, c) for v in self.by_id.values() for c in v.consumers()]
