"""A live stream in its owning shard: the ring writer and who reads it.

Sources (an RTSP publisher, a route pull) call `write()` with access units;
the stream writes them into its ring and marks itself for the coalesced
wake-up of the fronts that read it. The source never waits for a reader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable, Hashable, Protocol

from ..gotime import rfc3339nano
from ..media.stream_desc import StreamDesc, TrackDesc
from ..ring import RingWriter, ring_name
from .wake import WakeCoalescer

log = logging.getLogger("hub.shard.stream")

#: Ring geometry: ~30 s of a 2 Mbit/s stream, several GOPs of history.
RING_SLOTS = 4096
RING_DATA = 8 << 20


class LossCount(Protocol):
    """A track's ingest (hub.shard.rtp_in.TrackIngest), as the metrics see it."""

    def losses(self) -> tuple[int, int]: ...


class Stream:
    def __init__(self, stream_id: int, instance: str, path: str, sdp: str, tracks: list[TrackDesc],
                 addr: str, wake: WakeCoalescer, on_close: Callable[[Stream], None] | None = None) -> None:
        self.stream_id = stream_id
        self.path = path
        self.sdp = sdp
        self.tracks = tracks
        self.addr = addr
        self.start_on = rfc3339nano(datetime.now(timezone.utc))
        self.started = time.monotonic()
        self.version = 1
        self.size = 0  # bytes received from the source (RTP/RTCP payload as read)
        self.readers: set[Hashable] = set()  # IPC links of fronts reading this stream
        self.ring = RingWriter.create(ring_name(instance, self.stream_id), slots=RING_SLOTS,
                                      data_size=RING_DATA, replace=True)
        self.ring.set_description_version(self.version)
        self._wake = wake
        self._on_close = on_close
        self.closed = False
        self.source: Any = None  # the publisher or puller, for DELETE
        self.track_bytes: dict[int, int] = {}  # access-unit bytes per track (for datarate)
        #: Its tracks' ingests: they count lost and dropped RTP packets.
        self.ingests: list[LossCount] = []
        # In-process readers (HLS segmenter, recording), run once per loop turn after writes.
        self.taps: list[Callable[[], None]] = []
        #: The taps that want the source read at once (LL-HLS parts). The
        #: others (HLS segments, recordings) take its bytes in the windows of
        #: `unwatched_ingest_window` as well: seconds-long files, nobody
        #: waiting on the next milliseconds.
        self.prompt_taps: list[Callable[[], None]] = []
        self._taps_scheduled = False
        #: Called when a reader or a prompt tap is added (the source's ingest
        #: lets a socket held by `unwatched_ingest_window` read at once).
        self.on_watch: Callable[[], None] | None = None

    # -- readers ----------------------------------------------------------
    def add_reader(self, reader: Hashable) -> None:
        """A front reads this stream (its IPC link)."""
        self.readers.add(reader)
        if self.on_watch is not None:
            self.on_watch()

    def add_tap(self, tap: Callable[[], None], prompt: bool = False) -> None:
        """An in-process reader (HLS segmenter, recording), run after writes;
        `prompt`: it wants the source read at once (see `prompt_taps`)."""
        self.taps.append(tap)
        if prompt:
            self.make_prompt(tap)

    def make_prompt(self, tap: Callable[[], None]) -> None:
        """`tap` wants the source read at once from now on (an fMP4 HLS
        segmenter that an LL-HLS player made cut parts)."""
        if tap in self.taps and tap not in self.prompt_taps:
            self.prompt_taps.append(tap)
            if self.on_watch is not None:
                self.on_watch()

    def remove_tap(self, tap: Callable[[], None]) -> None:
        if tap in self.taps:
            self.taps.remove(tap)
        if tap in self.prompt_taps:
            self.prompt_taps.remove(tap)

    @property
    def watched(self) -> bool:
        """Whether anyone wants the source read at once: a front's reader
        (players, relays) or a prompt tap."""
        return bool(self.readers or self.prompt_taps)

    # -- writing ----------------------------------------------------------
    def write(self, track: int, data: bytes | memoryview | list[bytes], pts: int, dts: int,
              keyframe: bool, flags: int = 0) -> None:
        if self.closed:
            return
        self.track_bytes[track] = self.track_bytes.get(track, 0) + (
            sum(len(d) for d in data) if isinstance(data, list) else len(data))
        try:
            seq = self.ring.write(data, track=track, keyframe=keyframe, pts=pts, dts=dts, flags=flags)
        except ValueError as e:  # larger than the ring: drop, never stall
            log.warning("%s: dropped an entry: %s", self.path, e)
            return
        if self.readers:
            self._wake.mark(self.stream_id, seq, self.readers)
        if self.taps and not self._taps_scheduled:
            self._taps_scheduled = True
            asyncio.get_running_loop().call_soon(self._run_taps)

    def _run_taps(self) -> None:
        self._taps_scheduled = False
        for tap in list(self.taps):
            try:
                tap()
            except Exception:
                log.exception("%s: in-process reader failed; detaching it", self.path)
                self.remove_tap(tap)

    def update_tracks(self, tracks: list[TrackDesc], sdp: str | None = None) -> None:
        """New codec parameters (in-band SPS/PPS...): readers re-describe."""
        self.tracks = tracks
        if sdp is not None:
            self.sdp = sdp
        self.version += 1
        self.ring.set_description_version(self.version)

    # -- reading side bookkeeping --------------------------------------------
    def describe(self) -> dict[str, Any]:
        return StreamDesc(self.stream_id, self.path, self.ring.name, self.version, self.sdp,
                          self.tracks, self.addr, self.start_on).to_wire()

    def info(self) -> dict[str, Any]:
        """The stream object of the REST API, without consumers."""
        video = next((t for t in self.tracks if t.kind == "video"), None)
        audio = next((t for t in self.tracks if t.kind == "audio"), None)
        out: dict[str, Any] = {"start_on": self.start_on, "path": self.path, "addr": self.addr,
                               "size": self.size}
        if video is not None:
            out["video"] = {"codec": video.codec, "width": video.width, "height": video.height,
                            "fixedframerate": bool(video.framerate),
                            "framerate": int(video.framerate) if float(video.framerate).is_integer()
                            else round(video.framerate, 3),
                            "clockrate": video.clock_rate}
        if audio is not None:
            codec = "AAC" if audio.codec == "MPEG4-GENERIC" else audio.codec
            elapsed = max(1e-3, time.monotonic() - self.started)
            kbps = self.track_bytes.get(audio.index, 0) * 8 / 1000 / elapsed
            out["audio"] = {"codec": codec, "samplerate": audio.sample_rate or audio.clock_rate,
                            "samplesize": 16, "channels": audio.channels or 1, "datarate": int(kbps)}
        return out

    def losses(self) -> tuple[int, int]:
        """(RTP packets lost, dropped) by the sources of this stream so far."""
        lost = dropped = 0
        for ingest in self.ingests:
            a, b = ingest.losses()
            lost += a
            dropped += b
        return lost, dropped

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.ring.close(unlink=True)
        if self.readers:
            # One last wake so readers see the closed flag at once.
            self._wake.mark(self.stream_id, self.ring.write_seq, self.readers)
        if self._on_close is not None:
            self._on_close(self)
