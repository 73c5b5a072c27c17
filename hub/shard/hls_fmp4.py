"""HLS over fragmented MP4, plain and Low-Latency: one segmenter per stream.

One `Fmp4Segmenter` serves both variants: ``index.m3u8`` lists whole
segments (the plain fMP4 variant, for H.265 in hls.js and Safari);
``ll.m3u8`` adds the ~200 ms parts, the preload hint and blocking reload
(LL-HLS), and is rendered only once an LL player asked for it. Files:
``init{v}.mp4`` (a new one per description), ``part{n}.m4s`` (every part
of the stream, numbered from 0), ``{seq}.m4s`` (styp + its parts), all
written with a rename so a reader never sees half a file, in the stream's
FMP4 folder; the fronts serve them.

After the files of each completed part are in place, the fronts that play
the LL variant get one ``hls_part`` notice with the playlist's `LlState`
and the next part number: they answer the blocking reloads and preload-hint
requests they hold, without reading files to find out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Hashable

from ..ipc import messages as M
from ..media.hls import Fmp4Uris, LlState, render_ll_playlist
from ..media.mp4 import Fmp4Part, Fmp4Segment
from .fmp4_feed import Fmp4Feed
from .hls_ts import remove_files
from .stream import Stream

log = logging.getLogger("hub.shard.hls_fmp4")

#: Part duration (LL-HLS PART-TARGET), rounded to whole frames by the segmenter.
PART_TARGET = 0.2
#: Segments in the playlists (with `hlsfragment` 2 s: 14 s).
WINDOW = 7
#: Closed segments whose part files are kept (the playlist lists parts of
#: about three target durations; one more for players still fetching).
PART_SEGMENTS = 5
PLAYLIST = "index.m3u8"
LL_PLAYLIST = "ll.m3u8"
SUFFIXES = (".m4s", ".mp4", ".m3u8", ".tmp")


def ll_wire(seg: Any) -> dict[str, Any]:
    """The state a front decides blocking reloads on (`LlState`) and the next part number."""
    st = LlState.of(seg)
    return {"st": [st.last_sequence, st.last_parts, st.open_parts, st.part_target,
                   st.target_duration, st.ended], "n": seg.next_part_number}


class Fmp4HlsSegmenter(Fmp4Feed):
    def __init__(self, stream: Stream, folder: Path, fragment: float) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.fragment = fragment
        self.last_request = time.monotonic()
        self.first_segment = asyncio.Event()
        self.ll = False  # an LL player asked: render ll.m3u8 and notify subscribers
        self.subscribers: dict[Hashable, float] = {}  # front link -> last request it reported
        base = f"/streams{stream.path}/fmp4/"
        self.uris = Fmp4Uris(segment=base + "{seq}.m4s", part=base + "part{n}.m4s", init=base + "init{v}.mp4")
        self._parts: deque[tuple[int, int, int]] = deque()  # (segment, first part, last part)
        self._inits: set[int] = set()
        self._dirty = False
        super().__init__(stream, part_target=PART_TARGET, segment_target=fragment, window=WINDOW)

    # -- files ---------------------------------------------------------------------------
    def _write(self, name: str, chunks: Any) -> None:
        tmp = self.folder / (name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.writev(fd, chunks)  # tmpfs: a part is a few tens of KB, one call
        finally:
            os.close(fd)
        os.replace(tmp, self.folder / name)

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(self.folder / name)
        except FileNotFoundError:
            pass

    def started(self) -> None:
        seg = self.segmenter
        assert seg is not None
        self._write(f"init{seg.init_version}.mp4", [seg.init])
        self._inits.add(seg.init_version)

    def on_part(self, part: Fmp4Part) -> None:
        self._write(f"part{part.number}.m4s", part.chunks)
        if self._parts and self._parts[-1][0] == part.sequence:
            s, first, _ = self._parts[-1]
            self._parts[-1] = (s, first, part.number)
        else:
            self._parts.append((part.sequence, part.number, part.number))
        self._dirty = True

    def on_segment(self, segment: Fmp4Segment) -> None:
        self._write(f"{segment.sequence}.m4s", segment.chunks)
        self._unlink(f"{segment.sequence - WINDOW - 1}.m4s")
        while len(self._parts) > PART_SEGMENTS + 1:
            _, first, last = self._parts.popleft()
            for n in range(first, last + 1):
                self._unlink(f"part{n}.m4s")
        seg = self.segmenter
        assert seg is not None
        oldest = seg.segments[0].init_version if seg.segments else seg.init_version
        for v in [v for v in self._inits if v < oldest]:
            self._inits.discard(v)
            self._unlink(f"init{v}.mp4")
        self._write(PLAYLIST, [render_ll_playlist(seg, self.uris, low_latency=False).encode()])
        self.first_segment.set()

    def handled(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        if self.ll:
            self.publish_ll()

    def publish_ll(self) -> None:
        """Write ll.m3u8, then tell the subscribed fronts the state it shows."""
        seg = self.segmenter
        if seg is None:
            return
        self._write(LL_PLAYLIST, [render_ll_playlist(seg, self.uris).encode()])
        if self.subscribers:
            wire = ll_wire(seg)
            msg: M.HlsPartArgs = {"p": self.stream.path, "st": wire["st"], "n": wire["n"]}
            for ch in self.subscribers:
                ch.tell(M.HLS_PART(msg))  # type: ignore[attr-defined]

    def close(self) -> None:
        """Off the stream, subscribers told, files gone."""
        if self.closed:
            return
        self.detach()
        for ch in self.subscribers:
            ch.tell(M.HLS_GONE({"p": self.stream.path}))  # type: ignore[attr-defined]
        self.subscribers.clear()
        remove_files(self.folder, SUFFIXES)
        try:
            os.rmdir(self.folder.parent)  # the stream's folder, if TS left it empty
        except OSError:
            pass
