"""HLS over MPEG-TS: one segmenter per stream, in the owning shard.

Started by the first playlist request, from the ring's last keyframe, so the
first segment is ready one GOP later instead of a whole segment later; it is
cut at the first keyframe after that, then at the first keyframe after each
`hlsfragment` seconds. Segments and an atomically replaced playlist are
files in a tmpfs folder (or `hlspath`); the fronts serve them as files.

A video unit that is not whole AVCC (a NAL length past its end: the
ingest never writes one, but a segmenter must not depend on it) is
dropped, counted in `dropped`, and logged once per segmenter.

The open segment is a buffer whose length the publisher's keyframes and
times decide: it is cut without a keyframe past `MAX_SEGMENT` seconds or
`MAX_SEGMENT_BYTES`, and at a keyframe whose time is before the segment's
start (the time line went back: the next segment is a discontinuity).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Literal

from ..errors import ProtocolError
from ..media.access_unit import avcc_ok
from ..media.codec_config import AdtsParams, adts_params_from_asc
from ..media.hls import MediaPlaylist
from ..media.mpegts import TsMuxer
from ..media.stream_desc import AUDIO_AAC, TrackDesc
from ..ring import RingEntry, RingReader
from .stream import Stream

log = logging.getLogger("hub.shard.hls_ts")

WINDOW = 6
PLAYLIST = "index.m3u8"
#: A segment is cut without a keyframe past this many seconds or bytes.
MAX_SEGMENT = 60.0
MAX_SEGMENT_BYTES = 32 * 1024 * 1024


class TsSegmenter:
    def __init__(self, stream: Stream, folder: Path, fragment: float) -> None:
        self.stream = stream
        self.folder = folder
        self.fragment = fragment
        self.last_request = time.monotonic()
        self.first_segment = asyncio.Event()
        self.playlist = MediaPlaylist(window=WINDOW, uri_template=f"/streams{stream.path}/{{seq}}.ts")
        self._reader = RingReader.attach(stream.ring.name)
        self._reader.seek_last_keyframe()
        self._buf = bytearray()
        self._seg_start: int | None = None  # 90 kHz time of the current segment's start
        self._last_ts = 0
        self._discontinuity = False  # the next segment follows a time line that went back
        self._version = stream.version
        self._closed = False
        self.dropped = 0  # video units that are not AVCC, dropped
        self._setup(stream.tracks)
        folder.mkdir(parents=True, exist_ok=True)

    def _setup(self, tracks: list[TrackDesc]) -> None:
        self.video = next((t for t in tracks if t.kind == "video" and t.codec in ("H264", "H265")), None)
        self.audio = next((t for t in tracks if t.kind == "audio" and t.codec == AUDIO_AAC and t.asc), None)
        self.adts: AdtsParams | None = None
        if self.audio is not None:
            try:
                self.adts = adts_params_from_asc(self.audio.asc)
            except ProtocolError:
                self.audio = None
        codec: Literal["h264", "h265"] | None = (
            None if self.video is None else ("h265" if self.video.codec == "H265" else "h264"))
        self.muxer = TsMuxer(codec, self.audio is not None) if (codec or self.audio) else None
        v = self.video
        self.params: list[bytes] = [p for p in ((v.vps, v.sps, v.pps) if v else ()) if p]
        self._psi_written = False

    def pump(self) -> None:
        """Mux whatever the ring has that this segmenter has not seen."""
        if self._closed:
            return
        if self._version != self.stream.version:
            self._version = self.stream.version
            self._setup(self.stream.tracks)
        while entries := self._reader.read(512):
            for e in entries:
                self._entry(e)

    def _to90k(self, ts: int, track: TrackDesc) -> int:
        return ts * 90000 // track.clock_rate

    def _entry(self, e: RingEntry) -> None:
        m = self.muxer
        if m is None:
            return
        if self.video is not None and e.track == self.video.index:
            if not avcc_ok(e.data):
                self._drop()
                return
            dts = self._to90k(e.dts, self.video)
            self._maybe_cut(dts, e.keyframe)
            if self._seg_start is None:
                return  # wait for the first keyframe
            self._begin()
            self._buf += m.video(e.data, self._to90k(e.pts, self.video), dts, e.keyframe, self.params)
            self._last_ts = dts
        elif self.audio is not None and e.track == self.audio.index and self.adts is not None:
            pts = self._to90k(e.pts, self.audio)
            if self.video is None:
                self._maybe_cut(pts)
            if self._seg_start is None:
                return
            self._begin()
            self._buf += m.audio(e.data, pts, self.adts)

    def _drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1:
            log.warning("%s: dropping video units with bad NAL lengths from HLS (TS)", self.stream.path)

    def _begin(self) -> None:
        if not self._psi_written and self.muxer is not None:
            self._buf += self.muxer.psi()
            self._psi_written = True

    def _maybe_cut(self, now90k: int, key: bool = True) -> None:
        if self._seg_start is None:
            if key:
                self._seg_start = now90k
            return
        elapsed = (now90k - self._seg_start) / 90000
        if key and elapsed < 0:  # the time line went back
            self._write_segment(max(0.0, (self._last_ts - self._seg_start) / 90000))
            self._discontinuity = True
            self._seg_start = now90k
            return
        overgrown = elapsed >= MAX_SEGMENT or len(self._buf) >= MAX_SEGMENT_BYTES
        # The first segment is cut at the next keyframe so the first playlist
        # is ready fast; later ones are at least `fragment` long.
        if not overgrown and (not key or elapsed <= 0 or (self.first_segment.is_set() and elapsed < self.fragment)):
            return
        self._write_segment(max(0.0, elapsed))
        self._seg_start = now90k

    def _write_segment(self, duration: float) -> None:
        seq = self.playlist.media_sequence + len(self.playlist.segments)
        data = bytes(self._buf)
        self._buf.clear()
        self._psi_written = False
        _atomic_write(self.folder / f"{seq}.ts", data)
        discontinuity, self._discontinuity = self._discontinuity, False
        for old in self.playlist.add(duration, discontinuity):
            try:
                os.unlink(self.folder / f"{old.sequence}.ts")
            except FileNotFoundError:
                pass
        _atomic_write(self.folder / PLAYLIST, self.playlist.render().encode())
        self.first_segment.set()

    def close(self) -> None:
        """Stop reading (off the stream's taps first), then release the ring."""
        if self._closed:
            return
        self._closed = True
        self.stream.remove_tap(self.pump)
        self._reader.close()
        remove_files(self.folder, (".ts", ".m3u8", ".tmp"))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def remove_files(folder: Path, suffixes: tuple[str, ...]) -> None:
    """A segmenter's own files, and its folder if that leaves it empty; never a
    sub-folder (a nested stream's files, the stream's other variant)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.endswith(suffixes):
            try:
                os.unlink(folder / name)
            except OSError:
                pass
    try:
        os.rmdir(folder)
    except OSError:
        pass
