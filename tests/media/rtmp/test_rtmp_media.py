"""Audio/video message bodies to units: H.264, H.265 (Enhanced RTMP and codec
id 12), AAC, G.711 — every field, and the FLV muxer's output read back."""

from __future__ import annotations

import pytest

from hub.media.codec_config import avc_decoder_config, hevc_decoder_config
from hub.media.flv import FlvMuxer
from hub.media.rtmp.constants import MAX_RECORD_NALS, RtmpProtocolError
from hub.media.rtmp.media import (
    MediaUnit, avc_parameter_sets, hevc_parameter_sets, parse_media,
)
from rtmp_testkit import DATA

SPS = (DATA / "flv_x264_high_sps.bin").read_bytes()
PPS = (DATA / "flv_x264_high_pps.bin").read_bytes()
VPS5 = (DATA / "flv_x265_vps.bin").read_bytes()
SPS5 = (DATA / "flv_x265_sps.bin").read_bytes()
PPS5 = (DATA / "flv_x265_pps.bin").read_bytes()
AVCC = avc_decoder_config([SPS], [PPS])
HVCC = hevc_decoder_config([VPS5], [SPS5], [PPS5])
AU = b"\x00\x00\x00\x03\x65\x88\x80" + b"\x00\x00\x00\x02\x06\x05"
ASC = b"\x12\x10"


def _unit(type_id: int, ts: int, body: bytes | bytearray) -> MediaUnit:
    unit = parse_media(type_id, ts, body)
    assert unit is not None
    return unit


def _fields(u: MediaUnit) -> tuple[object, ...]:
    return (u.kind, u.codec, u.dts, u.pts, u.keyframe, u.config, bytes(u.data))


def test_avc_sequence_header_and_frames() -> None:
    assert _fields(_unit(9, 0, b"\x17\x00\x00\x00\x00" + AVCC)) == (
        "video", "h264", 0, 0, True, True, AVCC)
    assert _fields(_unit(9, 40, b"\x17\x01\x00\x00\x50" + AU)) == (
        "video", "h264", 40, 120, True, False, AU)
    assert _fields(_unit(9, 80, b"\x27\x01\xff\xff\xd8" + AU)) == (  # cts -40
        "video", "h264", 80, 40, False, False, AU)


def test_unit_data_is_a_view_of_the_body() -> None:
    body = bytearray(b"\x17\x01\x00\x00\x00" + AU)
    unit = _unit(9, 0, body)
    assert unit.data.obj is body and unit.data.nbytes == len(AU)


def test_legacy_hevc_codec_id_12() -> None:
    assert _fields(_unit(9, 0, b"\x1c\x00\x00\x00\x00" + HVCC)) == (
        "video", "h265", 0, 0, True, True, HVCC)
    assert _fields(_unit(9, 40, b"\x2c\x01\x00\x00\x28" + AU)) == (
        "video", "h265", 40, 80, False, False, AU)


def test_enhanced_hevc_packet_types() -> None:
    assert _fields(_unit(9, 0, b"\x90hvc1" + HVCC)) == ("video", "h265", 0, 0, True, True, HVCC)
    assert _fields(_unit(9, 40, b"\x91hvc1\x00\x00\x28" + AU)) == (
        "video", "h265", 40, 80, True, False, AU)
    assert _fields(_unit(9, 80, b"\xa3hvc1" + AU)) == ("video", "h265", 80, 80, False, False, AU)
    assert parse_media(9, 0, b"\x92hvc1") is None          # SequenceEnd
    assert parse_media(9, 0, b"\x94hvc1" + b"\x02\x00\x09colorInfo") is None  # Metadata
    assert parse_media(9, 0, b"\x90av01" + b"\x81") is None  # a FourCC we do not ingest
    assert parse_media(9, 0, b"\xd0hvc1\x00") is None       # command frame


@pytest.mark.parametrize("mode, first", [("enhanced", 0x90), ("legacy", 0x1C)])
def test_flv_muxer_tags_read_back(mode: str, first: int) -> None:
    """An RTMP body is an FLV tag body: what our FLV muxer writes parses back."""
    mux = FlvMuxer("h265", hevc_mode=mode)  # type: ignore[arg-type]
    seq = mux.video_sequence_header(HVCC, 0)
    assert seq[11] == first
    assert _fields(_unit(9, 0, seq[11:-4])) == ("video", "h265", 0, 0, True, True, HVCC)
    for cts in (0, 40):
        tag = mux.video_tag(AU, 1000, 1000 + cts, keyframe=False)
        assert _fields(_unit(9, 1000, tag[11:-4])) == ("video", "h265", 1000, 1000 + cts,
                                                       False, False, AU)
    avc = FlvMuxer("h264")
    tag = avc.video_tag(AU, 5, 45, keyframe=True)
    assert _fields(_unit(9, 5, tag[11:-4])) == ("video", "h264", 5, 45, True, False, AU)
    assert _fields(_unit(8, 7, avc.audio_tag(b"\x21\x00", 7)[11:-4])) == (
        "audio", "aac", 7, 7, True, False, b"\x21\x00")


def test_audio() -> None:
    assert _fields(_unit(8, 0, b"\xaf\x00" + ASC)) == ("audio", "aac", 0, 0, True, True, ASC)
    assert _fields(_unit(8, 23, b"\xaf\x01\x21\x10")) == ("audio", "aac", 23, 23, True, False, b"\x21\x10")
    assert _fields(_unit(8, 20, b"\x72" + b"\xd5" * 160)) == (
        "audio", "pcma", 20, 20, True, False, b"\xd5" * 160)
    assert _unit(8, 20, b"\x82\xff").codec == "pcmu"
    assert parse_media(8, 0, b"\x2f\xff\xfb") is None   # MP3
    assert parse_media(8, 0, b"\x9fOpus") is None       # Enhanced RTMP audio
    assert parse_media(8, 0, b"\xaf\x01") is None       # empty AAC frame
    assert parse_media(9, 0, b"\x17\x02\x00\x00\x00") is None  # AVC end of sequence
    assert parse_media(9, 0, b"\x17\x01\x00\x00\x00") is None  # no NAL units
    assert parse_media(9, 0, b"\x22\x00") is None       # Sorenson H.263
    assert parse_media(9, 0, b"\x57\x00") is None       # video info frame


@pytest.mark.parametrize("type_id, body, why", [
    (9, b"", "empty video"),
    (8, b"", "empty audio"),
    (9, b"\x17\x01\x00", "short AVC"),
    (9, b"\x90hv", "short Enhanced"),
    (9, b"\x91hvc1\x00", "short Enhanced RTMP coded"),
    (9, b"\x17\x03\x00\x00\x00", "unknown AVC packet type"),
    (9, b"\x17\x00\x00\x00\x00\x01\x64", "AVCDecoderConfigurationRecord"),
    (9, b"\x17\x00\x00\x00\x00" + AVCC[:4] + bytes((0xFD,)) + AVCC[5:], "2-byte NAL lengths"),
    (9, b"\x90hvc1" + HVCC[:21] + bytes((HVCC[21] & 0xFC,)) + HVCC[22:], "1-byte NAL lengths"),
    (9, b"\x90hvc1" + b"\x01" * 10, "HEVCDecoderConfigurationRecord"),
    (9, b"\x17\x01\x00\x00\x00" + b"\x00\x00\x00\x09\x65", "bad NAL length"),
    (9, b"\x17\x01\x00\x00\x00" + b"\x00\x00\x00\x00", "bad NAL length"),
    (9, b"\x17\x01\x00\x00\x00" + AU + b"\x00\x00", "truncated NAL length"),
    (8, b"\xaf", "short AAC"),
    (8, b"\xaf\x00\x12", "AudioSpecificConfig"),
    (8, b"\xaf\x02\x12\x10", "unknown AAC packet type"),
    (18, b"\x02", "not audio or video"),
])
def test_malformed(type_id: int, body: bytes, why: str) -> None:
    with pytest.raises(RtmpProtocolError, match=why):
        parse_media(type_id, 0, body)


def test_parameter_sets_out_of_records() -> None:
    assert avc_parameter_sets(AVCC) == ([SPS], [PPS])
    two = avc_decoder_config([SPS, SPS], [PPS, PPS, PPS])
    assert avc_parameter_sets(memoryview(two)) == ([SPS, SPS], [PPS, PPS, PPS])
    assert hevc_parameter_sets(HVCC) == ([VPS5], [SPS5], [PPS5])
    for bad in (AVCC[:-5], b"\x02" + AVCC[1:], b""):  # (High profile: 4 trailer bytes)
        with pytest.raises(RtmpProtocolError):
            avc_parameter_sets(bad)
    for bad in (HVCC[:-1], b"\x00" + HVCC[1:], HVCC[:22]):
        with pytest.raises(RtmpProtocolError):
            hevc_parameter_sets(bad)


def test_records_list_a_bounded_number_of_parameter_sets() -> None:
    """An hvcC declares up to 255 arrays of 65,535 entries: an 8 MiB record of
    empty entries (4 million) took the shard's loop 3.4 s to read, at every
    sequence header. At most MAX_RECORD_NALS, all arrays together, refused
    before any is read."""
    assert hevc_parameter_sets(hevc_decoder_config([VPS5], [SPS5], [PPS5] * (MAX_RECORD_NALS - 2)))[2] == (
        [PPS5] * (MAX_RECORD_NALS - 2))
    with pytest.raises(RtmpProtocolError, match="too many parameter sets"):
        hevc_parameter_sets(hevc_decoder_config([VPS5], [SPS5], [PPS5] * (MAX_RECORD_NALS - 1)))
    with pytest.raises(RtmpProtocolError, match="too many parameter sets"):
        avc_parameter_sets(avc_decoder_config([SPS] * 31, [PPS] * (MAX_RECORD_NALS - 30)))
    empty_array = bytes((39,)) + (0xFFFF).to_bytes(2, "big") + bytes(2 * 0xFFFF)
    record = HVCC[:22] + bytes((64,)) + empty_array * 64
    with pytest.raises(RtmpProtocolError, match="too many parameter sets"):
        hevc_parameter_sets(record)
