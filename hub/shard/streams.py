"""The shard's table of live streams, by canonical path."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Callable, Hashable

from ..child import ChildArgs
from ..errors import NotFound
from ..media.stream_desc import TrackDesc
from ..placement import canonical_path
from .stream import Stream
from .wake import WakeCoalescer

log = logging.getLogger("hub.shard.streams")


class StreamTable:
    def __init__(self, args: ChildArgs, send_wake: Callable[[Hashable, dict[int, int]], None],
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.args = args
        self._streams: dict[str, Stream] = {}
        self._by_id: dict[int, Stream] = {}
        self._ids = itertools.count(1)
        self.wake = WakeCoalescer(send_wake, loop)
        # Sources that can be asked to close (publishers, pullers): path -> fn
        self.on_stream_closed: list[Callable[[Stream], None]] = []
        self.on_stream_opened: list[Callable[[Stream], None]] = []  # a new stream is live (recorders)
        #: A cluster's shard (hub.shard.cluster): True for a source that must
        #: not replace a live stream (a pull: another node's publisher won).
        self.yields: Callable[[Any], bool] | None = None

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Any:
        return iter(list(self._streams.values()))

    def _new_id(self) -> int:
        # Unique across shards: the shard index rides in the low byte.
        return (next(self._ids) << 8) | (self.args.index & 0xFF)

    def publish(self, path: str, sdp: str, tracks: list[TrackDesc], addr: str, source: Any) -> Stream:
        """A new source for `path`; a live one is replaced (as ipchub does)."""
        path = canonical_path(path)
        old = self._streams.get(path)
        if old is not None and self.yields is not None and self.yields(source):
            raise NotFound(f"{path} is live from {old.addr}")
        if old is not None:
            log.info("%s: new source from %s replaces %s", path, addr, old.addr)
            self.close(old)
        stream = Stream(self._new_id(), self.args.instance, path, sdp, tracks, addr, self.wake,
                        on_close=self._forget)
        stream.source = source
        self._streams[path] = stream
        self._by_id[stream.stream_id] = stream
        log.info("%s: live from %s (%s)", path, addr, ", ".join(t.codec for t in tracks))
        for cb in self.on_stream_opened:
            cb(stream)
        return stream

    def get(self, path: str) -> Stream | None:
        return self._streams.get(canonical_path(path))

    def by_id(self, stream_id: int) -> Stream | None:
        return self._by_id.get(stream_id)

    def open(self, path: str, reader: Hashable | None) -> dict[str, Any]:
        stream = self.get(path)
        if stream is None:
            raise NotFound("404 page not found")
        if reader is not None:
            stream.add_reader(reader)
        return stream.describe()

    def release(self, stream_id: int, reader: Hashable) -> None:
        stream = self._by_id.get(stream_id)
        if stream is not None:
            stream.readers.discard(reader)

    def drop_reader(self, reader: Hashable) -> None:
        for stream in self._streams.values():
            stream.readers.discard(reader)

    def close(self, stream: Stream) -> None:
        """Stop a stream: its source is disconnected, its readers see the end."""
        source = stream.source
        stream.close()
        if source is not None and hasattr(source, "close"):
            source.close()

    def _forget(self, stream: Stream) -> None:
        if self._streams.get(stream.path) is stream:
            del self._streams[stream.path]
        self._by_id.pop(stream.stream_id, None)
        for cb in self.on_stream_closed:
            cb(stream)

    def close_all(self) -> None:
        for stream in list(self._streams.values()):
            self.close(stream)
