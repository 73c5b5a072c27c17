"""An RTMP publisher's tracks from its sequence headers, and when it goes live."""

from __future__ import annotations

import pytest

from hub.errors import ProtocolError
from hub.media.codec_config import avc_decoder_config
from hub.media.rtmp import MediaUnit, RtmpProtocolError
from hub.media.stream_desc import AUDIO_AAC
from hub.shard.rtmp_tracks import RtmpTrackPlan, g711_track, video_track
from tests.shard.ingest_helpers import PPS, SPS

RECORD = avc_decoder_config([SPS], [PPS])


def unit(kind: str, codec: str, data: bytes, config: bool = True) -> MediaUnit:
    return MediaUnit(kind, codec, 0, 0, True, config, memoryview(data))  # type: ignore[arg-type]


def test_live_once_every_announced_track_is_configured() -> None:
    plan = RtmpTrackPlan()
    plan.metadata({"videocodecid": 7.0, "audiocodecid": 10.0, "framerate": 30.0})
    assert plan.expect == {"video", "audio"} and not plan.ready()
    plan.configure(unit("video", "h264", RECORD))
    assert not plan.ready()
    plan.configure(unit("audio", "aac", bytes.fromhex("1190")))
    assert plan.ready()
    tracks, index = plan.tracks()
    assert index == {"video": 0, "audio": 1}
    v, a = tracks
    assert (v.index, v.kind, v.codec, v.payload_type, v.clock_rate, v.width, v.height, v.framerate) == \
        (0, "video", "H264", 96, 90000, 640, 360, 25.0)  # the SPS's rate beats the metadata's
    assert v.fmtp.startswith("packetization-mode=1;profile-level-id=F4001E;sprop-parameter-sets=")
    assert (a.index, a.codec, a.payload_type, a.clock_rate, a.channels, a.sample_rate, a.asc) == \
        (1, AUDIO_AAC, 97, 48000, 2, 48000, bytes.fromhex("1190"))
    assert "config=1190" in a.fmtp and "sizelength=13" in a.fmtp
    assert plan.video_params == [SPS, PPS]


def test_without_metadata_never_ready_and_codecs_must_match() -> None:
    plan = RtmpTrackPlan()
    plan.configure(unit("video", "h264", RECORD))
    assert not plan.ready() and plan.expect == set()
    assert plan.configured(unit("video", "h264", b"", False))
    assert not plan.configured(unit("video", "h265", b"", False))
    assert not plan.configured(unit("audio", "aac", b"", False))
    plan.metadata({"videocodecid": 7.0})
    assert plan.ready() and [t.codec for t in plan.tracks()[0]] == ["H264"]


def test_g711_needs_no_sequence_header() -> None:
    plan = RtmpTrackPlan()
    plan.configure(unit("audio", "pcma", b"\xd5" * 160, config=False))
    tracks, index = plan.tracks()
    assert index == {"audio": 0} and tracks == [g711_track("pcma")]
    assert (tracks[0].codec, tracks[0].payload_type, tracks[0].clock_rate) == ("PCMA", 8, 8000)
    assert g711_track("pcmu").payload_type == 0


@pytest.mark.parametrize("kind, codec, data, error", [
    ("video", "h264", RECORD[:10], RtmpProtocolError),                 # truncated record
    ("video", "h264", bytes.fromhex("0164001effe000"), RtmpProtocolError),  # no SPS
    ("video", "h265", bytes(23), RtmpProtocolError),                   # version 0
    ("audio", "aac", b"\x00\x00", ProtocolError),                       # object type 0
])
def test_bad_sequence_headers_raise(kind: str, codec: str, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        RtmpTrackPlan().configure(unit(kind, codec, data))


def test_video_track_keeps_every_parameter_set() -> None:
    record = avc_decoder_config([SPS, SPS[:-1] + b"\x01"], [PPS])
    desc, params = video_track("h264", record)
    assert desc.sps == SPS and params == [SPS, SPS[:-1] + b"\x01", PPS]
