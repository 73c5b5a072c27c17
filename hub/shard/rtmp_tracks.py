"""An RTMP publisher's tracks: from its sequence headers to `TrackDesc`s.

RTMP says nothing like an SDP up front. A publisher sends `@setDataFrame`
metadata (which codecs it will send: `videocodecid`, `audiocodecid`), then
one sequence header per track (avcC, hvcC, AudioSpecificConfig), then
frames. `RtmpTrackPlan` collects those and says when the stream can go
live:

- once every track the metadata announced has its configuration, or
- at the first frame of a configured track (a publisher without metadata,
  or one whose announced track never comes): tracks still without their
  configuration are left out.

Until then nothing is buffered: a frame of a track without configuration
is dropped (counted by the caller). G.711 needs no configuration; its
first frame configures it.

The tracks are written as an RTSP publisher's would be: H.264/H.265 with
payload type 96 at 90 kHz and the parameter sets in the fmtp, AAC as
MPEG4-GENERIC (AAC-hbr) at its sample rate, G.711 with its static payload
type at 8 kHz, so every output plays them as it plays an announced stream.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..media.aac import AacConfig
from ..media.amf0 import AmfValue
from ..media.rtmp import MediaUnit, RtmpProtocolError
from ..media.rtmp.media import avc_parameter_sets, hevc_parameter_sets
from ..media.stream_desc import AUDIO_AAC, TrackDesc
from .sdp_tracks import with_aac_config, with_h264_params, with_h265_params

__all__ = ["RtmpTrackPlan", "Kind", "audio_config_track", "g711_track", "video_track"]

Kind = Literal["video", "audio"]

VIDEO_PT = 96
AAC_PT = 97
VIDEO_CLOCK = 90000
_G711 = {"pcma": ("PCMA", 8), "pcmu": ("PCMU", 0)}


def video_track(codec: str, record: bytes | memoryview) -> tuple[TrackDesc, list[bytes]]:
    """The track of an avcC/hvcC record and every parameter set in it.
    RtmpProtocolError when the record does not parse or lacks a set."""
    if codec == "h264":
        sps, pps = avc_parameter_sets(record)
        if not sps or not pps:
            raise RtmpProtocolError("RTMP: AVC sequence header without SPS or PPS")
        base = TrackDesc(0, "video", "H264", VIDEO_PT, VIDEO_CLOCK, fmtp="packetization-mode=1")
        return with_h264_params(base, sps[0], pps[0]), [*sps, *pps]
    vps, sps, pps = hevc_parameter_sets(record)
    if not vps or not sps or not pps:
        raise RtmpProtocolError("RTMP: HEVC sequence header without VPS, SPS or PPS")
    base = TrackDesc(0, "video", "H265", VIDEO_PT, VIDEO_CLOCK)
    return with_h265_params(base, vps[0], sps[0], pps[0]), [*vps, *sps, *pps]


def audio_config_track(asc: bytes) -> TrackDesc:
    """The AAC track of an AudioSpecificConfig (ProtocolError when it does not parse)."""
    cfg = AacConfig.parse(asc)
    base = TrackDesc(0, "audio", AUDIO_AAC, AAC_PT, cfg.sample_rate, cfg.channels)
    return with_aac_config(base, asc)


def g711_track(codec: str) -> TrackDesc:
    name, pt = _G711[codec]
    return TrackDesc(0, "audio", name, pt, 8000, 1, sample_rate=8000)


def _number(value: AmfValue) -> float:
    return value if isinstance(value, float) else 0.0


class RtmpTrackPlan:
    """The tracks of one publish, until it goes live (see the module's doc)."""

    def __init__(self) -> None:
        self.video: TrackDesc | None = None
        self.video_codec = ""
        self.video_params: list[bytes] = []
        self.audio: TrackDesc | None = None
        self.audio_codec = ""
        #: Kinds the metadata announced.
        self.expect: set[Kind] = set()
        self.framerate = 0.0

    def metadata(self, values: dict[str, AmfValue]) -> None:
        """`onMetaData`: which tracks to wait for, and the frame rate."""
        if _number(values.get("videocodecid")) or isinstance(values.get("videocodecid"), str):
            self.expect.add("video")
        if "audiocodecid" in values:
            self.expect.add("audio")
        self.framerate = _number(values.get("framerate")) or _number(values.get("videoframerate"))

    def configure(self, unit: MediaUnit) -> None:
        """A sequence header (or a G.711 frame): the track's description.
        A later one replaces the earlier; ProtocolError when it does not parse."""
        if unit.kind == "video":
            desc, params = video_track(unit.codec, unit.data)
            if not desc.framerate and 0 < self.framerate <= 240:
                desc = dataclasses.replace(desc, framerate=self.framerate)
            self.video, self.video_codec, self.video_params = desc, unit.codec, params
        elif unit.codec == "aac":
            self.audio, self.audio_codec = audio_config_track(bytes(unit.data)), "aac"
        else:
            self.audio, self.audio_codec = g711_track(unit.codec), unit.codec

    def configured(self, unit: MediaUnit) -> bool:
        """Whether `unit`'s track has its configuration (for its codec)."""
        if unit.kind == "video":
            return self.video is not None and self.video_codec == unit.codec
        return self.audio is not None and self.audio_codec == unit.codec

    def ready(self) -> bool:
        """Every track the metadata announced is configured."""
        have = {k for k, d in (("video", self.video), ("audio", self.audio)) if d is not None}
        return bool(self.expect) and self.expect <= have

    def tracks(self) -> tuple[list[TrackDesc], dict[Kind, int]]:
        """The stream's tracks (video first) and each kind's track index."""
        tracks: list[TrackDesc] = []
        index: dict[Kind, int] = {}
        kinds: tuple[tuple[Kind, TrackDesc | None], ...] = (("video", self.video), ("audio", self.audio))
        for kind, desc in kinds:
            if desc is not None:
                index[kind] = len(tracks)
                tracks.append(dataclasses.replace(desc, index=len(tracks)))
        return tracks, index

