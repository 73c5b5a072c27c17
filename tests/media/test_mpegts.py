"""MPEG-TS muxer: byte-exact tables, PES headers and packetisation, then PyAV
decoding our segments. PAT/PMT expectations are the bytes FFmpeg's own mpegts
muxer wrote for the same streams (libavformat 62, default PIDs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_flv import FPS, FRAMES, HEIGHT, WIDTH, audio_clip, decode_file, video_clip

from hub.errors import ProtocolError
from hub.media.codec_config import AdtsParams, adts_params_from_asc
from hub.media.mpegts import (PID_AUDIO, PID_VIDEO, TsMuxer, crc32_mpeg2, encode_pcr,
                              encode_timestamp, pat_section, pes_header)

FF = b"\xff"
PAT = bytes.fromhex("0000b00d0001c100000001f0002ab104b2")  # pointer field + section
PMT_H264_AAC = bytes.fromhex("0002b0170001c10000e100f0001be100f0000fe101f0002f44b99b")
PMT_H265 = bytes.fromhex("0002b0180001c10000e100f00024e100f006050448455643cb9e0052")


def packets(data: bytes) -> list[bytes]:
    assert len(data) % 188 == 0
    return [data[i:i + 188] for i in range(0, len(data), 188)]


def test_crc32_mpeg2_check_value() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7
    sec = pat_section()
    assert crc32_mpeg2(sec) == 0  # CRC over data and its own CRC is zero


def test_psi_h264_aac_matches_ffmpeg() -> None:
    mux = TsMuxer("h264", audio=True)
    pat, pmt = packets(mux.psi())
    assert pat == b"\x47\x40\x00\x10" + PAT + FF * (184 - len(PAT))
    assert pmt == b"\x47\x50\x00\x10" + PMT_H264_AAC + FF * (184 - len(PMT_H264_AAC))


def test_psi_h265_and_audio_only() -> None:
    pmt = packets(TsMuxer("h265", audio=False).psi())[1]
    assert pmt[4:4 + len(PMT_H265)] == PMT_H265
    pmt = packets(TsMuxer(None, audio=True).psi())[1]
    section = pmt[5:5 + 3 + 0x12]
    assert section[:17] == bytes.fromhex("02b0120001c10000e101f0000fe101f000")
    assert crc32_mpeg2(section) == 0


def test_psi_continuity_counters_wrap() -> None:
    mux = TsMuxer("h264", audio=False)
    ccs = [pkt[3] & 0x0F for _ in range(18) for pkt in packets(mux.psi())]
    assert ccs == [i % 16 for i in range(18) for _ in range(2)]


def test_timestamps_and_pcr_hand_computed() -> None:
    assert encode_timestamp(2, 126000) == bytes.fromhex("210007d861")  # FFmpeg's 1.4 s
    assert encode_timestamp(2, 90000) == bytes.fromhex("210005bf21")
    assert encode_timestamp(3, 129600) == bytes.fromhex("310007f481")
    assert encode_timestamp(2, (1 << 33) - 1) == bytes.fromhex("2fffffffff")
    assert encode_timestamp(2, 1 << 33) == bytes.fromhex("2100010001")  # wraps to 0
    assert encode_pcr(126000) == bytes.fromhex("0000f6187e00")
    assert encode_pcr(1) == bytes.fromhex("00000000fe00")


def test_pes_headers() -> None:
    assert pes_header(0xE0, 129600, 126000, None) == bytes.fromhex(
        "000001e0" "0000" "80c00a" "310007f481" "110007d861")
    assert pes_header(0xC0, 126000, None, 100) == bytes.fromhex(
        "000001c0" "006c" "808005" "210007d861")
    assert pes_header(0xC0, 126000, 126000, 70000)[4:6] == b"\x00\x00"  # too long: 0


def test_video_keyframe_single_packet_exact() -> None:
    mux = TsMuxer("h264", audio=False)
    out = mux.video(b"\x00\x00\x00\x02\x65\x88", 129600, 126000, True,
                    [b"\x67\x42", b"\x68\xce"])
    es = bytes.fromhex("0000000109f0" "000000016742" "0000000168ce" "000000016588")
    pes = bytes.fromhex("000001e0000080c00a" "310007f481" "110007d861") + es
    assert len(pes) == 43
    af = bytes((0x50,)) + bytes.fromhex("0000f6187e00") + FF * 133  # RAI+PCR, stuffing
    assert out == b"\x47\x41\x00\x30" + bytes((len(af),)) + af + pes


def _au(nal_len: int) -> bytes:
    """One non-IDR slice NAL unit of ``nal_len`` bytes, AVCC-framed."""
    return nal_len.to_bytes(4, "big") + b"\x41" + bytes(i % 251 + 1 for i in range(nal_len - 1))


@pytest.mark.parametrize("nal_len, stuffing", [(335, 1), (334, 2), (333, 3)])
def test_video_two_packets_stuffing(nal_len: int, stuffing: int) -> None:
    # PES = 14-byte header (PTS only) + AUD 6 + start code 4 + NAL; 176 bytes fit
    # after the PCR in packet 1, so 359 bytes leave 183 for packet 2.
    mux = TsMuxer("h264", audio=False)
    au = _au(nal_len)
    first, second = packets(mux.video(au, 90000, 90000, False))
    assert first[:6] == b"\x47\x41\x00\x30\x07\x10"  # PUSI, CC 0, AF: PCR only
    pes_start = first[12:]
    assert pes_start[:14] == bytes.fromhex("000001e00000808005210005bf21")
    assert second[:4] == b"\x47\x01\x00\x31"  # no PUSI, CC 1
    if stuffing == 1:
        assert second[4] == 0
    else:
        assert second[4:6 + stuffing - 2] == bytes((stuffing - 1, 0)) + FF * (stuffing - 2)
    payload = pes_start + second[4 + stuffing:]
    assert payload[14:] == b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01" + au[4:]


def test_video_continuity_counter_wraps_and_pids() -> None:
    mux = TsMuxer("h264", audio=True)
    ccs = []
    for i in range(20):
        for pkt in packets(mux.video(_au(500), i * 3600, i * 3600, i == 0, [b"\x67", b"\x68"])):
            assert (pkt[1] & 0x1F) << 8 | pkt[2] == PID_VIDEO
            ccs.append(pkt[3] & 0x0F)
    assert ccs == [i % 16 for i in range(len(ccs))]
    assert len(ccs) == 60


def test_annexb_conversion() -> None:
    mux = TsMuxer("h264", audio=False)
    aud = b"\x00\x00\x00\x02\x09\xf0"
    own = b"\x00\x00\x00\x01\x67" + b"\x00\x00\x00\x01\x68" + b"\x00\x00\x00\x01\x65"
    # The AU's own AUD is dropped; its own SPS/PPS mean ours are not added.
    assert mux.annexb(aud + own, True, [b"\x67\xff", b"\x68\xff"]) == (
        b"\x00\x00\x00\x01\x09\xf0" b"\x00\x00\x00\x01\x67" b"\x00\x00\x00\x01\x68"
        b"\x00\x00\x00\x01\x65")
    h265 = TsMuxer("h265", audio=False)
    assert h265.annexb(b"\x00\x00\x00\x02\x26\x01", True, [b"\x40", b"\x42", b"\x44"]) == (
        b"\x00\x00\x00\x01\x46\x01\x50" b"\x00\x00\x00\x01\x40" b"\x00\x00\x00\x01\x42"
        b"\x00\x00\x00\x01\x44" b"\x00\x00\x00\x01\x26\x01")
    for bad in (b"\x00\x00\x00", b"\x00\x00\x00\x05\x65", b"\x00\x00\x00\x00"):
        with pytest.raises(ProtocolError):
            mux.annexb(bad, False, [])


def test_audio_pes_exact_and_audio_only_pcr() -> None:
    adts = AdtsParams(2, 4, 2)
    out = TsMuxer("h264", audio=True).audio(b"\x21\x00", 126000, adts)
    pes = bytes.fromhex("000001c0" "0011" "808005" "210007d861" "fff1508001 3ffc 2100"
                        .replace(" ", ""))
    stuffing = 184 - len(pes)
    assert out == (b"\x47\x41\x01\x30" + bytes((stuffing - 1, 0)) + FF * (stuffing - 2) + pes)
    only = TsMuxer(None, audio=True).audio(b"\x21\x00", 126000, adts)
    assert only[4:12] == bytes.fromhex("a050") + encode_pcr(126000)
    assert (only[1] & 0x1F) << 8 | only[2] == PID_AUDIO


def test_muxer_rejects_bad_configs() -> None:
    with pytest.raises(ValueError):
        TsMuxer(None, audio=False)
    with pytest.raises(ValueError):
        TsMuxer("vp8", audio=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TsMuxer("h264", audio=False).audio(b"\x00", 0, AdtsParams(2, 4, 2))
    with pytest.raises(ValueError):
        TsMuxer(None, audio=True).video(b"", 0, 0, True)


TS_OFFSET = 126000  # 1.4 s, like FFmpeg, so B-frame DTS stay positive


def mux_segments(codec: str, with_audio: bool) -> list[bytes]:
    """Segments cut at each keyframe, each starting with PAT/PMT; audio two
    AAC frames per PES, interleaved by time."""
    clip = video_clip(codec)
    audio = audio_clip()
    adts = adts_params_from_asc(audio.asc)
    mux = TsMuxer(codec, with_audio)  # type: ignore[arg-type]
    items: list[tuple[int, int, bool, bytes | tuple[bytes, ...]]] = []
    for au, pts, dts, key in clip.aus:
        items.append((dts * 3600 + TS_OFFSET, pts * 3600 + TS_OFFSET, key, au))
    if with_audio:
        for i in range(0, len(audio.frames), 2):
            ts = i * 1024 * 90000 // 44100 + TS_OFFSET
            items.append((ts, ts, False, audio.frames[i:i + 2]))
    items.sort(key=lambda it: (it[0], isinstance(it[3], tuple)))
    segments: list[list[bytes]] = []
    for dts, pts, key, payload in items:
        if isinstance(payload, tuple):
            if segments:
                segments[-1].append(mux.audio_frames(payload, pts, adts))
            continue
        if key:
            segments.append([mux.psi()])
        segments[-1].append(mux.video(payload, pts, dts, key, clip.params))
    return [b"".join(s) for s in segments]


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_pyav_decodes_our_segments(tmp_path: Path, codec: str) -> None:
    clip = video_clip(codec)
    segments = mux_segments(codec, with_audio=True)
    assert len(segments) == 2  # GOP of 25 frames
    digests = []
    for i, seg in enumerate(segments):
        path = tmp_path / f"{i}.ts"
        path.write_bytes(seg)
        got = decode_file(path, "mpegts")  # each segment decodes on its own
        assert got.errors == []
        assert (got.codec, got.width, got.height) == (
            "hevc" if codec == "h265" else "h264", WIDTH, HEIGHT)
        assert got.video_pts == sorted(got.video_pts)
        assert got.audio_frames > 0
        digests += got.digests
    assert digests == list(clip.frame_digests)
    whole = tmp_path / "all.ts"
    whole.write_bytes(b"".join(segments))
    got = decode_file(whole, "mpegts")
    assert got.errors == []
    assert len(got.digests) == FRAMES
    assert got.video_pts == [TS_OFFSET + i * 90000 // FPS for i in range(FRAMES)]
    assert got.audio_frames >= len(audio_clip().frames) - 4
