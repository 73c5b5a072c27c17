"""FLV fan-out: HTTP-FLV and WebSocket-FLV players of one stream in a front.

Each batch of ring entries is muxed once into FLV tags (for WebSocket, each
tag already wrapped in its own binary frame: one message per tag) and the same
bytes go to every player, one transport write per player per batch.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from ...media.codec_config import avc_decoder_config, hevc_decoder_config
from ...media.flv import (CODEC_AVC, CODEC_HEVC_LEGACY, HEVC_FOURCC_ID, SOUND_AAC, SOUND_G711A,
                         SOUND_G711U, FlvMuxer, HevcMode)
from ...media.stream_desc import AUDIO_AAC, StreamDesc, TrackDesc
from ...media.websocket import encode_header
from ...ring import RingEntry
from .consumer import Consumer

if TYPE_CHECKING:
    from .views import StreamView

log = logging.getLogger("hub.api.play.flv")

_G711 = {"PCMA": True, "PCMU": False}


class FlvFanout:
    def __init__(self, view: StreamView, ws: bool, hevc_mode: HevcMode = "enhanced") -> None:
        self.view = view
        self.ws = ws
        self.hevc_mode = hevc_mode
        self.consumers: list[Consumer] = []
        self.on_desc(view.desc)

    # -- set-up from the stream description --------------------------------
    def on_desc(self, desc: StreamDesc) -> None:
        video = next((t for t in desc.tracks if t.kind == "video" and t.codec in ("H264", "H265")), None)
        audio = next((t for t in desc.tracks if t.kind == "audio"
                      and (t.codec == AUDIO_AAC and t.asc or t.codec in _G711)), None)
        self.video, self.audio = video, audio
        codec: Literal["h264", "h265"] = "h265" if video is not None and video.codec == "H265" else "h264"
        self.muxer = FlvMuxer(codec if video is not None else None, self.hevc_mode)
        self._video_ms = 1000 / video.clock_rate if video else 0.0
        self._audio_ms = 1000 / audio.clock_rate if audio else 0.0
        self.head = self._head_bytes(video, audio)
        if self.consumers:
            # New parameter sets mid-stream: players get the new sequence
            # headers in-line, before the next frame that needs them.
            seq = self._sequence_headers(video, audio)
            for c in self.consumers:
                c.send(seq, 0)

    def _head_bytes(self, video: TrackDesc | None, audio: TrackDesc | None) -> bytes:
        m = self.muxer
        if video is not None:
            vid = (HEVC_FOURCC_ID if self.hevc_mode == "enhanced" else CODEC_HEVC_LEGACY) \
                if video.codec == "H265" else CODEC_AVC
        acodec = None
        if audio is not None:
            acodec = SOUND_AAC if audio.codec == AUDIO_AAC else (SOUND_G711A if _G711[audio.codec] else SOUND_G711U)
        meta = m.metadata(video.width if video else None, video.height if video else None,
                          video.framerate if video else None, vid if video else None, acodec,
                          (audio.sample_rate or audio.clock_rate) if audio else None,
                          audio.channels if audio else None)
        # The 9-byte header + PreviousTagSize0 is one WS message, each tag another.
        return b"".join((self._frame_one(m.header(video is not None, audio is not None)),
                         self._frame_one(meta), self._sequence_headers(video, audio)))

    def _sequence_headers(self, video: TrackDesc | None, audio: TrackDesc | None) -> bytes:
        parts = []
        if video is not None:
            record = None
            try:
                if video.codec == "H264" and video.sps and video.pps:
                    record = avc_decoder_config([video.sps], [video.pps])
                elif video.codec == "H265" and video.vps and video.sps and video.pps:
                    record = hevc_decoder_config([video.vps], [video.sps], [video.pps])
            except ValueError as e:
                log.warning("%s: bad parameter sets: %s", self.view.desc.path, e)
            if record is not None:
                parts.append(self._frame_one(self.muxer.video_sequence_header(record)))
        if audio is not None and audio.codec == AUDIO_AAC:
            parts.append(self._frame_one(self.muxer.audio_sequence_header(audio.asc)))
        return b"".join(parts)

    def _frame_one(self, tag: bytes) -> bytes:
        return encode_header(len(tag)) + tag if self.ws else tag

    # -- muxing, once per batch -----------------------------------------------
    def mux(self, entries: list[RingEntry]) -> tuple[bytes, int]:
        """FLV bytes for `entries` and the offset of the first video keyframe
        (-1 if none; 0 for audio-only streams, where every frame is a start)."""
        parts: list[bytes] = []
        pos = 0
        key_offset = -1 if self.video is not None else 0
        vidx = self.video.index if self.video is not None else -1
        aidx = self.audio.index if self.audio is not None else -1
        ws = self.ws
        m = self.muxer
        for e in entries:
            if e.track == vidx:
                tag = m.video_tag(e.data, int(e.dts * self._video_ms), int(e.pts * self._video_ms), e.keyframe)
                if e.keyframe and key_offset < 0:
                    key_offset = pos
            elif e.track == aidx:
                assert self.audio is not None
                ts = int(e.pts * self._audio_ms)
                if self.audio.codec == AUDIO_AAC:
                    tag = m.audio_tag(e.data, ts)
                else:
                    tag = m.g711_tag(e.data, ts, _G711[self.audio.codec])
            else:
                continue
            if ws:
                head = encode_header(len(tag))
                parts.append(head)
                pos += len(head)
            parts.append(tag)
            pos += len(tag)
        return b"".join(parts), key_offset

    def join(self, consumer: Consumer) -> None:
        """Headers and the cached GOP for a new player, then the live fan-out."""
        entries = self.view.gop()
        gop, _ = self.mux(entries)
        consumer.write_direct(self.head + gop)
        if not entries and self.video is not None:
            # No GOP cache (cache_gop off or nothing yet): start at the next
            # keyframe instead of in the middle of a GOP.
            consumer.skipping = True
        self.consumers.append(consumer)

    def feed(self, entries: list[RingEntry]) -> None:
        if not self.consumers:
            return
        blob, key_offset = self.mux(entries)
        if not blob:
            return
        for c in list(self.consumers):
            c.send(blob, key_offset)
