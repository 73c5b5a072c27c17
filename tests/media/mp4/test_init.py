"""Init segment: every field of the sample entries and of the moov skeleton."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hub.errors import ProtocolError
from hub.media.mp4.boxes import Box, child, children, iter_boxes
from hub.media.mp4.init import esds, init_segment, mp4_track
from hub.media.stream_desc import AUDIO_AAC, TrackDesc

DATA = Path(__file__).resolve().parent.parent.parent / "data"
SPS_264 = (DATA / "flv_x264_high_sps.bin").read_bytes()  # High, level 1.0, 64x64
PPS_264 = (DATA / "flv_x264_high_pps.bin").read_bytes()
VPS_265 = (DATA / "flv_x265_vps.bin").read_bytes()  # Main, level 1 (30), 64x64
SPS_265 = (DATA / "flv_x265_sps.bin").read_bytes()
PPS_265 = (DATA / "flv_x265_pps.bin").read_bytes()
ASC = bytes.fromhex("1188")  # AAC LC, 48 kHz, mono

VISUAL_64x64 = (
    "000000000000" "0001"  # reserved, data_reference_index 1
    "0000" "0000" "000000000000000000000000"  # pre_defined, reserved, pre_defined
    "0040" "0040"  # width 64, height 64
    "00480000" "00480000"  # 72 dpi
    "00000000" "0001"  # reserved, frame_count 1
    + "00" * 32 +  # compressorname: empty
    "0018" "ffff"  # depth 24, pre_defined -1
)


def h264() -> TrackDesc:
    return TrackDesc(0, "video", "H264", 96, 90000, sps=SPS_264, pps=PPS_264)


def h265() -> TrackDesc:
    return TrackDesc(0, "video", "H265", 96, 90000, vps=VPS_265, sps=SPS_265, pps=PPS_265)


def aac(rate: int = 48000) -> TrackDesc:
    return TrackDesc(1, "audio", AUDIO_AAC, 97, rate, asc=ASC)


def test_avc1_with_avcc() -> None:
    t = mp4_track(h264(), 1)
    assert (t.codec, t.kind, t.track_id, t.timescale, t.width, t.height) == (
        "avc1", "video", 1, 90000, 64, 64)
    assert t.entry == bytes.fromhex(
        "00000088" "61766331" + VISUAL_64x64 +
        "00000032" "61766343"  # avcC, 50 bytes
        "01" "64" "00" "0a"  # version 1, profile High, compatibility 0, level 1.0
        "ff"  # reserved 111111 + lengthSizeMinusOne 3
        "e1" "0017" + SPS_264.hex() +  # one SPS of 23 bytes
        "01" "0004" + PPS_264.hex() +  # one PPS of 4 bytes
        "fd" "f8" "f8" "00")  # High: chroma 4:2:0, luma 8 bit, chroma 8 bit, no SPS ext


def test_hvc1_with_hvcc() -> None:
    t = mp4_track(h265(), 1)
    assert (t.codec, t.width, t.height) == ("hvc1", 64, 64)
    assert t.entry == bytes.fromhex(
        "000000c9" "68766331" + VISUAL_64x64 +
        "00000073" "68766343"  # hvcC, 115 bytes
        "01"  # configurationVersion
        "01" "60000000" "900000000000" "1e"  # Main, compatibility, constraints, level 30
        "f000" "fc"  # min_spatial_segmentation 0, parallelismType 0
        "fd" "f8" "f8"  # chroma 4:2:0, 8 bit, 8 bit
        "0000"  # avgFrameRate unspecified
        "0f"  # constantFrameRate 0, 1 temporal layer, nested, 4-byte lengths
        "03"  # three arrays, each complete
        "a0" "0001" "0018" + VPS_265.hex() +
        "a1" "0001" "0027" + SPS_265.hex() +
        "a2" "0001" "0006" + PPS_265.hex())


def test_mp4a_with_esds() -> None:
    t = mp4_track(aac(), 2)
    assert (t.codec, t.kind, t.timescale, t.channels, t.sample_rate, t.frame_duration) == (
        "mp4a", "audio", 48000, 1, 48000, 1024)
    assert esds(ASC) == bytes.fromhex(
        "00000027" "65736473" "00000000"  # esds, version 0
        "03" "19" "0000" "00"  # ES_Descriptor (25 bytes), ES_ID 0, no flags
        "04" "11" "40" "15"  # DecoderConfig (17 bytes), MPEG-4 audio, audio stream
        "000000" "00000000" "00000000"  # bufferSizeDB, max and average bit rate unknown
        "05" "02" "1188"  # DecoderSpecificInfo: the AudioSpecificConfig
        "06" "01" "02")  # SLConfig predefined 2
    assert t.entry == bytes.fromhex(
        "0000004b" "6d703461" "000000000000" "0001"  # mp4a, data_reference_index 1
        "0000000000000000"  # reserved
        "0001" "0010" "0000" "0000"  # 1 channel, 16 bit, pre_defined, reserved
        "bb800000") + esds(ASC)  # 48000 in 16.16


def test_aac_frame_in_another_clock() -> None:
    # An RTP clock of 90 kHz for 48 kHz audio: 1024 samples are 1920 ticks.
    assert mp4_track(aac(90000), 2).frame_duration == 1920


@pytest.mark.parametrize("track", [
    TrackDesc(0, "video", "H264", 96, 90000, sps=SPS_264),  # no PPS
    TrackDesc(0, "video", "H265", 96, 90000, sps=SPS_265, pps=PPS_265),  # no VPS
    TrackDesc(1, "audio", AUDIO_AAC, 97, 48000),  # no config
    TrackDesc(1, "audio", "PCMA", 8, 8000),
    TrackDesc(0, "video", "H264", 96, 0, sps=SPS_264, pps=PPS_264),
    TrackDesc(1, "audio", AUDIO_AAC, 97, 48000, asc=b"\x00\x00"),  # object type 0
])
def test_tracks_mp4_cannot_carry(track: TrackDesc) -> None:
    with pytest.raises(ProtocolError):
        mp4_track(track, 1)


def _full(b: Box) -> tuple[int, int, bytes]:
    word = struct.unpack_from(">I", b.payload)[0]
    return word >> 24, word & 0xFFFFFF, bytes(b.payload[4:])


def test_init_segment_layout() -> None:
    tracks = [mp4_track(h264(), 1), mp4_track(aac(), 2)]
    data = init_segment(tracks)
    top = list(iter_boxes(data))
    assert [b.kind for b in top] == [b"ftyp", b"moov"]
    assert bytes(top[0]) == bytes.fromhex("00000018" "66747970" "69736f36" "00000000"
                                          "69736f36" "6d703431")  # iso6, 0, [iso6, mp41]
    moov = top[1]
    assert [b.kind for b in children(moov)] == [b"mvhd", b"trak", b"trak", b"mvex"]
    version, flags, mvhd = _full(child(moov, b"mvhd"))
    assert (version, flags, len(mvhd)) == (0, 0, 96)
    assert struct.unpack_from(">IIIIIH", mvhd) == (0, 0, 1000, 0, 0x10000, 0x0100)
    assert mvhd[-4:] == b"\x00\x00\x00\x03"  # next_track_ID
    traks = [b for b in children(moov) if b.kind == b"trak"]
    for trak, (track_id, handler, timescale, size) in zip(
            traks, [(1, b"vide", 90000, (64, 64)), (2, b"soun", 48000, (0, 0))]):
        version, flags, tkhd = _full(child(trak, b"tkhd"))
        assert (version, flags) == (0, 3)  # enabled, in movie
        assert struct.unpack_from(">IIIII", tkhd) == (0, 0, track_id, 0, 0)
        assert struct.unpack_from(">hhhH", tkhd, 28) == (0, 0, 0 if handler == b"vide" else 0x100, 0)
        assert struct.unpack_from(">II", tkhd, 72) == (size[0] << 16, size[1] << 16)
        mdia = child(trak, b"mdia")
        assert _full(child(mdia, b"mdhd"))[2] == struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0)
        hdlr = _full(child(mdia, b"hdlr"))[2]
        assert hdlr[4:8] == handler
        minf = child(mdia, b"minf")
        stbl = child(minf, b"stbl")
        assert [b.kind for b in children(stbl)] == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
        assert _full(child(stbl, b"stts"))[2] == b"\x00\x00\x00\x00"
        assert _full(child(stbl, b"stsz"))[2] == bytes(8)
        stsd = _full(child(stbl, b"stsd"))[2]
        assert stsd == b"\x00\x00\x00\x01" + tracks[track_id - 1].entry
        dref = child(child(minf, b"dinf"), b"dref")
        assert bytes(dref.payload) == bytes.fromhex("00000000" "00000001" "0000000c" "75726c20" "00000001")
    mvex = child(moov, b"mvex")
    assert [bytes(b) for b in children(mvex)] == [
        bytes.fromhex("00000020" "74726578" "00000000" "00000001" "00000001" + "00" * 12),
        bytes.fromhex("00000020" "74726578" "00000000" "00000002" "00000001" + "00" * 12)]


def test_init_with_duration_has_mehd() -> None:
    data = init_segment([mp4_track(h264(), 1)], duration_ms=30_500)
    mvex = child(list(iter_boxes(data))[1], b"mvex")
    assert bytes(child(mvex, b"mehd")) == bytes.fromhex("00000014" "6d656864" "01000000"
                                                        "0000000000007724")


def test_same_tracks_same_bytes() -> None:
    # The recording join tells sessions apart by comparing inits.
    assert init_segment([mp4_track(h264(), 1)]) == init_segment([mp4_track(h264(), 1)])
