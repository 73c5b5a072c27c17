"""avcC / hvcC / ADTS, byte-exact.

Fixtures (tests/data): ``flv_x264_high_{sps,pps}.bin`` are the parameter sets
libx264 (PyAV, preset veryfast, 64x64) put in its Annex B output;
``flv_ffmpeg_x264_high.flv`` is what FFmpeg 8.1's own FLV muxer wrote for the
same encoder settings. ``flv_x265_{vps,sps,pps}.bin`` come from libx265
(preset ultrafast, 64x64).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ProtocolError
from hub.media.codec_config import (AdtsParams, adts_header, adts_params_from_asc,
                                    avc_decoder_config, hevc_decoder_config,
                                    hevc_general_ptl)
from hub.media.flv import TAG_VIDEO, FlvReader, FlvTag, parse_video

DATA = Path(__file__).resolve().parent.parent / "data"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_avcc_baseline_hand_computed() -> None:
    sps = bytes.fromhex("6742c01eaa")
    pps = bytes.fromhex("68ce3c80")
    assert avc_decoder_config([sps], [pps]) == bytes.fromhex(
        "0142c01e" "ff" "e1" "0005" "6742c01eaa" "01" "0004" "68ce3c80")


def test_avcc_high_422_10bit_trailer() -> None:
    sps = bytes.fromhex("677a0028")
    pps = bytes.fromhex("68ee")
    rec = avc_decoder_config([sps], [pps], chroma_format_idc=2, bit_depth_luma=10,
                             bit_depth_chroma=10)
    assert rec == bytes.fromhex("017a0028ffe10004677a0028010002" "68ee" "fefafa00")


def test_avcc_matches_ffmpeg_flv_muxer() -> None:
    reader = FlvReader()
    reader.feed(fixture("flv_ffmpeg_x264_high.flv"))
    seq = next(parse_video(ev.data) for ev in reader.events()
               if isinstance(ev, FlvTag) and ev.tag_type == TAG_VIDEO)
    assert seq.packet_type == 0 and seq.codec == 7
    rec = avc_decoder_config([fixture("flv_x264_high_sps.bin")], [fixture("flv_x264_high_pps.bin")])
    assert rec[1] == 100  # High profile: the chroma/bit-depth trailer is present
    assert rec == seq.payload
    assert rec[-4:] == b"\xfd\xf8\xf8\x00"


def test_avcc_rejects_missing_sets() -> None:
    with pytest.raises(ValueError):
        avc_decoder_config([], [b"\x68\x00"])


VPS, SPS, PPS = (fixture(f"flv_x265_{n}.bin") for n in ("vps", "sps", "pps"))
# The first 22 bytes FFmpeg 8.1's FLV muxer wrote for the same libx265 stream
# (it differs after them: it adds an SEI array and marks arrays incomplete).
FFMPEG_HVCC_HEAD = bytes.fromhex("0101600000009000000000001ef000fcfdf8f800000f")


def test_hevc_general_ptl_unescapes() -> None:
    assert b"\x00\x00\x03" in SPS[:20]
    layers, nesting, ptl = hevc_general_ptl(SPS)
    assert (layers, nesting) == (1, True)
    assert ptl == bytes.fromhex("01600000009000000000001e")


def test_hvcc_hand_computed() -> None:
    rec = hevc_decoder_config([VPS], [SPS], [PPS])
    assert rec[:22] == FFMPEG_HVCC_HEAD
    assert rec == (FFMPEG_HVCC_HEAD + b"\x03"
                   + b"\xa0\x00\x01" + len(VPS).to_bytes(2, "big") + VPS
                   + b"\xa1\x00\x01" + len(SPS).to_bytes(2, "big") + SPS
                   + b"\xa2\x00\x01" + len(PPS).to_bytes(2, "big") + PPS)


def test_hvcc_main10_422() -> None:
    rec = hevc_decoder_config([VPS], [SPS], [PPS], chroma_format_idc=2, bit_depth_luma=10,
                              bit_depth_chroma=10)
    assert rec[16:19] == b"\xfe\xfa\xfa"


def test_hevc_sps_too_short() -> None:
    with pytest.raises(ProtocolError):
        hevc_general_ptl(b"\x42\x01\x01")


@pytest.mark.parametrize("args, wire", [
    ((2, 4, 2, 100), "fff150800d7ffc"),  # AAC LC 44.1 kHz stereo, 107-byte frame
    ((2, 3, 1, 0), "fff14c4000fffc"),  # 48 kHz mono, empty payload
    ((2, 11, 1, 8184), "fff16c43fffffc"),  # 8 kHz mono, largest frame (8191 bytes)
])
def test_adts_header(args: tuple[int, int, int, int], wire: str) -> None:
    assert adts_header(*args) == bytes.fromhex(wire)


def test_adts_too_big() -> None:
    with pytest.raises(ValueError):
        adts_header(2, 4, 2, 8185)


def test_adts_params_from_asc() -> None:
    assert adts_params_from_asc(b"\x12\x10") == AdtsParams(2, 4, 2)
    assert adts_params_from_asc(b"\x11\x88") == AdtsParams(2, 3, 1)
    for bad in (b"\x12", b"\x17\x80\x00\x00\x10", b"\xf8\x00\x00"):
        with pytest.raises(ProtocolError):
            adts_params_from_asc(bad)
