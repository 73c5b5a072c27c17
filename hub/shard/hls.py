"""The shard's HLS segmenters: MPEG-TS (`hls_ts`) and fMP4/LL-HLS (`hls_fmp4`).

At most one of each kind per stream, started by the first playlist request
(``hls_open`` from a front), pumped as one of the stream's taps, and
stopped after `IDLE_STOP` seconds without a request. A front that plays the
LL variant subscribes to the stream's ``hls_part`` notices with its
``hls_open`` and keeps the subscription with ``hls_touch`` notices while its
players ask (a front's cached LL state saves it an IPC round trip per
playlist request); a subscriber that stops touching is dropped after
`IDLE_STOP`. A segmenter that stops tells its subscribers (``hls_gone``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Hashable

from ..errors import BadRequest, ServiceUnavailable
from ..hls_files import fmp4_folder, stream_folder
from ..ipc.messages import HlsFolder
from ..media.stream_desc import AUDIO_AAC, VIDEO_CODECS
from .hls_fmp4 import Fmp4HlsSegmenter, ll_wire
from .hls_ts import TsSegmenter
from .stream import Stream

log = logging.getLogger("hub.shard.hls")

#: A segmenter without playlist requests (an LL subscriber without touches) is stopped.
IDLE_STOP = 60.0
#: How often idle segmenters are looked for.
REAP_EVERY = 5.0
VARIANTS = ("ts", "fmp4", "ll")

Segmenter = TsSegmenter | Fmp4HlsSegmenter


async def _first(ready: asyncio.Event, timeout: float) -> None:
    if not ready.is_set():
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise ServiceUnavailable("no HLS segment yet (no keyframe?)") from None


class HlsManager:
    """Started on demand, pumped on writes, stopped idle."""

    def __init__(self, root: Path, fragment: float) -> None:
        self.root = root
        self.fragment = fragment
        self.segmenters: dict[tuple[int, str], Segmenter] = {}  # (stream id, "ts" | "fmp4")
        self._by_path: dict[str, Fmp4HlsSegmenter] = {}
        self._reaper: asyncio.Task[None] | None = None

    def _start(self, stream: Stream, kind: str) -> Segmenter:
        key = (stream.stream_id, kind)
        seg = self.segmenters.get(key)
        if seg is None:
            if kind == "ts":
                seg = TsSegmenter(stream, stream_folder(self.root, stream.path), self.fragment)
            else:
                seg = Fmp4HlsSegmenter(stream, fmp4_folder(self.root, stream.path), self.fragment)
                self._by_path[stream.path] = seg
            self.segmenters[key] = seg
            stream.add_tap(seg.pump)
            seg.pump()
            if self._reaper is None:
                self._reaper = asyncio.get_running_loop().create_task(self._reap())
        seg.last_request = time.monotonic()
        return seg

    async def open(self, stream: Stream, variant: str = "ts", reader: Hashable | None = None,
                   timeout: float = 15.0) -> HlsFolder:
        """Start (or keep) the variant's segmenter; once it has something to list,
        TS and fMP4: {folder}; LL: {folder, st, n} (see `ll_wire`),
        and ``reader`` gets the stream's ``hls_part`` notices."""
        if variant not in VARIANTS:
            raise BadRequest(f"unknown HLS variant {variant!r}")
        seg = self._start(stream, "ts" if variant == "ts" else "fmp4")
        if isinstance(seg, TsSegmenter):
            await _first(seg.first_segment, timeout)
            return {"folder": str(seg.folder)}
        if seg.segmenter is None and not any(t.codec in VIDEO_CODECS or t.codec == AUDIO_AAC
                                             for t in stream.tracks):
            raise ServiceUnavailable("no track of this stream goes into fragmented MP4")
        # Players need one whole segment in a playlist (hls.js: "levelEmptyError"
        # before), LL ones too; later LL playlists list the parts as they come.
        await _first(seg.first_segment, timeout)
        if variant == "fmp4":
            return {"folder": str(seg.folder)}
        if seg.closed or seg.segmenter is None:
            raise ServiceUnavailable("the stream's HLS has stopped")
        if not seg.ll:
            seg.ll = True
            stream.make_prompt(seg.pump)  # parts are awaited: the source is read at once
            seg.publish_ll()
        if reader is not None:
            seg.subscribers[reader] = time.monotonic()
        wire = ll_wire(seg.segmenter)
        return {"folder": str(seg.folder), "st": wire["st"], "n": wire["n"]}

    def touch(self, path: str, reader: Hashable) -> None:
        """A front's LL players are still asking (``hls_touch``)."""
        seg = self._by_path.get(path)
        if seg is not None and reader in seg.subscribers:
            now = time.monotonic()
            seg.subscribers[reader] = now
            seg.last_request = now

    def drop_reader(self, reader: Hashable) -> None:
        """A front's link closed."""
        for seg in self._by_path.values():
            seg.subscribers.pop(reader, None)

    def _stop(self, key: tuple[int, str]) -> None:
        seg = self.segmenters.pop(key)
        if isinstance(seg, Fmp4HlsSegmenter) and self._by_path.get(seg.stream.path) is seg:
            del self._by_path[seg.stream.path]
        seg.close()

    def stream_closed(self, stream: Stream) -> None:
        for key in [k for k in self.segmenters if k[0] == stream.stream_id]:
            self._stop(key)

    async def _reap(self) -> None:
        """Every REAP_EVERY while a segmenter runs; gone with the last one
        (a shard that served HLS once does not wake for it at rest)."""
        while self.segmenters:
            await asyncio.sleep(REAP_EVERY)
            now = time.monotonic()
            for key, seg in list(self.segmenters.items()):
                if now - seg.last_request > IDLE_STOP:
                    log.info("%s: HLS (%s) idle, stopping its segmenter", seg.stream.path, key[1])
                    self._stop(key)
                elif isinstance(seg, Fmp4HlsSegmenter):
                    for ch in [c for c, t in seg.subscribers.items() if now - t > IDLE_STOP]:
                        del seg.subscribers[ch]
        self._reaper = None

    def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for key in list(self.segmenters):
            self._stop(key)
