"""Shared pieces of the ingest-session tests (no tests here)."""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from typing import Any, Callable, Coroutine

from hub.child import ChildArgs
from hub.config import Config
from hub.media.stream_desc import TrackDesc
from hub.ring import RingReader
from hub.shard.ingest import IngestSession
from hub.shard.streams import StreamTable

# x264's SPS and PPS for 640x360 High 4:4:4 at 25 fps (from FFmpeg's SDP).
SPS = base64.b64decode("Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw")
PPS = base64.b64decode("aOvjxEhE")
AUD = bytes.fromhex("0910")

# The tracks of an FFmpeg ANNOUNCE (H.264 without sprop, 48 kHz stereo AAC)
# plus G.711 A-law, which is passed through.
AAC_FMTP = "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190"


def tracks() -> list[TrackDesc]:
    return [TrackDesc(0, "video", "H264", 96, 90000, fmtp="packetization-mode=1"),
            TrackDesc(1, "audio", "MPEG4-GENERIC", 97, 48000, 2, fmtp=AAC_FMTP, asc=bytes.fromhex("1190"),
                      sample_rate=48000),
            TrackDesc(2, "audio", "PCMA", 8, 8000, 1)]


def make_streams() -> StreamTable:
    args = ChildArgs("shard", 0, -1, "ti" + os.urandom(4).hex(), tempfile.gettempdir(), Config())
    return StreamTable(args, lambda reader, s: None)


class Source:
    """A source as far as the session cares: something to close."""

    def __init__(self) -> None:
        self.ingest: IngestSession | None = None
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        if self.ingest is not None:
            self.ingest.close()


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def session(streams: StreamTable, path: str = "/live/x", clock: Callable[[], float] | None = None,
            timeout: float = 60.0, **kw: Any) -> tuple[IngestSession, Source]:
    src = Source()
    ingest = IngestSession(streams, path, "127.0.0.1:40000", src, timeout=timeout,
                           clock=clock or Clock(), **kw)
    src.ingest = ingest
    return ingest, src


Entry = tuple[int, int, bool, int, int, bytes]
RINGS: list[Ring] = []


class Ring:
    """A reader of a session's ring attached as it goes live (so it sees
    every entry, not just those from the last keyframe)."""

    def __init__(self, ingest: IngestSession) -> None:
        assert ingest.stream is not None
        self.reader = RingReader.attach(ingest.stream.ring.name)
        self._entries: list[Entry] = []
        RINGS.append(self)

    def entries(self) -> list[Entry]:
        """(track, flags, keyframe, pts, dts, data) of every entry so far."""
        while got := self.reader.read(1024):
            self._entries += [(e.track, e.flags, e.keyframe, e.pts, e.dts, e.data) for e in got]
        return list(self._entries)

    def close(self) -> None:
        self.reader.close()


def go_live(ingest: IngestSession, desc: list[TrackDesc] | None = None) -> Ring:
    """Publish `desc` (default: `tracks()`); a ring reader from the first entry."""
    ingest.go_live(tracks() if desc is None else desc)
    return Ring(ingest)


def run(fn: Callable[[StreamTable], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        streams = make_streams()
        try:
            await asyncio.wait_for(fn(streams), 10)
        finally:
            while RINGS:
                RINGS.pop().close()
            streams.close_all()

    asyncio.run(main())
