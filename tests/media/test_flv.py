"""FLV muxer and reader: byte-exact tags, then real decoders on muxed files.

The clip helpers here (``video_clip``, ``audio_clip``) are shared with
test_mpegts.py: they encode testsrc with PyAV (libx264 / libx265 / aac) and
hand back access units in our conventions (AVCC, raw AAC).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.codec_config import avc_decoder_config, hevc_decoder_config
from hub.media.flv import (FOURCC_HEVC, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, FlvHeader, FlvMuxer,
                           FlvReader, FlvTag, parse_audio, parse_script, parse_video)

AU = b"\x00\x00\x00\x02\x65\x88"
RECORD = b"\x01\x64\x00\x1f"


def test_header_bytes() -> None:
    assert FlvMuxer.header(True, True) == bytes.fromhex("464c5601050000000900000000")
    assert FlvMuxer.header(True, False) == bytes.fromhex("464c5601010000000900000000")
    assert FlvMuxer.header(False, True) == bytes.fromhex("464c5601040000000900000000")


def test_avc_video_tag_extended_timestamp_negative_cts() -> None:
    tag = FlvMuxer("h264").video_tag(AU, dts_ms=0x01020304, pts_ms=0x01020304 - 2,
                                     keyframe=True)
    assert tag == bytes.fromhex(
        "09" "00000b" "020304" "01" "000000"  # type, size 11, ts low 24, ts ext, stream
        "17" "01" "fffffe"  # key+AVC, NALU, cts -2
        "000000026588"
        "00000016")  # PreviousTagSize 22


def test_avc_inter_tag_and_sequence_header() -> None:
    mux = FlvMuxer("h264")
    assert mux.video_tag(AU, 40, 120, keyframe=False) == bytes.fromhex(
        "09" "00000b" "000028" "00" "000000" "2701000050" "000000026588" "00000016")
    assert mux.video_sequence_header(RECORD, 0) == bytes.fromhex(
        "09000009" "000000" "00" "000000" "1700000000" "0164001f" "00000014")
    assert mux.video_end_of_sequence(7) == bytes.fromhex(
        "09000005" "000007" "00" "000000" "1702000000" "00000010")


def test_cts_clamped_and_timestamp_wraps() -> None:
    mux = FlvMuxer("h264")
    tag = mux.video_tag(AU, 2**32 + 5, 2**32 + 5 + 10**8, keyframe=True)
    assert tag[4:8] == b"\x00\x00\x05\x00"
    assert tag[13:16] == b"\x7f\xff\xff"


def test_audio_tags() -> None:
    mux = FlvMuxer("h264")
    assert mux.audio_sequence_header(b"\x12\x10") == bytes.fromhex(
        "08000004" "000000" "00" "000000" "af001210" "0000000f")
    assert mux.audio_tag(b"\x21\x00", 1000) == bytes.fromhex(
        "08000004" "0003e8" "00" "000000" "af012100" "0000000f")
    assert mux.g711_tag(b"\xd5\xd5", 20, alaw=True) == bytes.fromhex(
        "08000003" "000014" "00" "000000" "72d5d5" "0000000e")
    assert mux.g711_tag(b"\xff", 20, alaw=False) == bytes.fromhex(
        "08000002" "000014" "00" "000000" "82ff" "0000000d")


def test_metadata_minimal_exact() -> None:
    tag = FlvMuxer().metadata(None, None, None, None, None, None, None, creator="x")
    body = (b"\x02\x00\x0aonMetaData" b"\x08\x00\x00\x00\x01"
            b"\x00\x07creator\x02\x00\x01x" b"\x00\x00\x09")
    assert len(body) == 0x22
    assert tag == b"\x12\x00\x00\x22" + bytes(7) + body + b"\x00\x00\x00\x2d"


def test_metadata_fields() -> None:
    tag = FlvMuxer().metadata(640, 480, 25.0, 7, 10, 44100, 2, 16)
    reader = FlvReader()
    reader.feed(FlvMuxer.header(True, True) + tag)
    events = reader.events()
    assert isinstance(events[1], FlvTag) and events[1].tag_type == TAG_SCRIPT
    name, args = parse_script(events[1].data)
    assert name == "onMetaData"
    assert args == [{"width": 640.0, "height": 480.0, "framerate": 25.0, "videocodecid": 7.0,
                     "audiosamplerate": 44100.0, "audiosamplesize": 16.0, "stereo": True,
                     "audiocodecid": 10.0, "creator": "ipchub stream media server"}]


def test_hevc_enhanced_tags() -> None:
    mux = FlvMuxer("h265")  # enhanced is the default
    assert mux.hevc_mode == "enhanced"
    assert mux.video_sequence_header(RECORD, 0) == bytes.fromhex(
        "0900000900000000000000" "90" "68766331" "0164001f" "00000014")
    assert mux.video_tag(AU, 80, 120, keyframe=True) == bytes.fromhex(
        "0900000e00005000000000" "91" "68766331" "000028" "000000026588" "00000019")
    assert mux.video_tag(AU, 80, 80, keyframe=True)[11:16] == b"\x93hvc1"
    assert mux.video_tag(AU, 80, 80, keyframe=False)[11:16] == b"\xa3hvc1"
    assert mux.video_tag(AU, 80, 40, keyframe=False)[11:19] == b"\xa1hvc1\xff\xff\xd8"
    assert mux.video_end_of_sequence(0)[11:16] == b"\x92hvc1"


def test_hevc_legacy_tags() -> None:
    mux = FlvMuxer("h265", hevc_mode="legacy")
    assert mux.video_sequence_header(RECORD, 0) == bytes.fromhex(
        "0900000900000000000000" "1c00000000" "0164001f" "00000014")
    assert mux.video_tag(AU, 80, 120, keyframe=True) == bytes.fromhex(
        "0900000b00005000000000" "1c01000028" "000000026588" "00000016")
    assert mux.video_tag(AU, 80, 80, keyframe=False)[11:16] == b"\x2c\x01\x00\x00\x00"
    with pytest.raises(ValueError):
        FlvMuxer("h265", hevc_mode="other")  # type: ignore[arg-type]


def test_parse_video_and_audio() -> None:
    v = parse_video(bytes.fromhex("91687663310000280000000265"))
    assert (v.frame_type, v.codec, v.packet_type, v.cts, v.payload) == (
        1, FOURCC_HEVC, 1, 40, b"\x00\x00\x00\x02\x65")
    assert v.keyframe
    v = parse_video(bytes.fromhex("2701fffffe00"))
    assert (v.frame_type, v.codec, v.packet_type, v.cts, v.payload) == (2, 7, 1, -2, b"\x00")
    a = parse_audio(bytes.fromhex("af012100"))
    assert (a.sound_format, a.rate, a.size_16bit, a.stereo, a.packet_type, a.payload) == (
        10, 3, True, True, 1, b"\x21\x00")
    a = parse_audio(bytes.fromhex("72d5"))
    assert (a.sound_format, a.rate, a.size_16bit, a.stereo, a.packet_type) == (7, 0, True, False, None)
    for bad in (b"", b"\x17\x01", b"\x91hvc1\x00"):
        with pytest.raises(ProtocolError):
            parse_video(bad)
    with pytest.raises(ProtocolError):
        parse_audio(b"\xaf")


# A hand-written stream: header, script tag, video tag at ts 0x01000000.
STREAM = bytes.fromhex(
    "464c5601010000000900000000"
    "1200000300000000000000" "050505" "0000000e"  # script tag: three AMF0 nulls
    "0900000600000001000000" "170100000000" "00000011")


def _split(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytewise":
        return [data[i:i + 1] for i in range(len(data))]
    return [data[:7], data[7:30], data[30:]]


@pytest.mark.parametrize("how", ["whole", "bytewise", "chunks"])
@pytest.mark.parametrize("trailing", [b"", b"\x00\x00"])
def test_reader_feeds(how: str, trailing: bytes) -> None:
    reader = FlvReader()
    events = []
    for chunk in _split(STREAM + trailing, how):
        reader.feed(chunk)
        events += reader.events()
    assert events == [
        FlvHeader(1, False, True),
        FlvTag(TAG_SCRIPT, 0, b"\x05\x05\x05"),
        FlvTag(TAG_VIDEO, 0x01000000, b"\x17\x01\x00\x00\x00\x00"),
    ]
    assert reader.buffered == len(trailing)


@pytest.mark.parametrize("data", [
    b"FLX",
    b"FLV\x01\x01\x00\x00\x00\x05",  # header size < 9
    STREAM[:13] + b"\x07" + STREAM[14:],  # unknown tag type
    STREAM[:13] + b"\x32",  # reserved bits in a partial tag
    STREAM[:21] + b"\x01" + STREAM[22:],  # stream id not zero
    STREAM[:-1] + b"\x12",  # wrong PreviousTagSize
    b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x01",  # PreviousTagSize0 not zero
])
def test_reader_errors(data: bytes) -> None:
    reader = FlvReader()
    reader.feed(data)
    with pytest.raises(ProtocolError):
        while reader.next_event() is not None:
            pass


def test_reader_caps_tag_size() -> None:
    reader = FlvReader(max_tag=100)
    reader.feed(FlvMuxer.header(True, False) + b"\x09\x00\x00\x65")
    reader.feed(bytes(7))
    with pytest.raises(ProtocolError):
        reader.events()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_reader_any_bytes(data: bytes, with_header: bool) -> None:
    reader = FlvReader()
    reader.feed((STREAM[:13] if with_header else b"") + data)
    try:
        for ev in reader.events():
            if isinstance(ev, FlvTag) and ev.tag_type == TAG_VIDEO:
                parse_video(ev.data)
            elif isinstance(ev, FlvTag) and ev.tag_type == TAG_AUDIO:
                parse_audio(ev.data)
            elif isinstance(ev, FlvTag):
                parse_script(ev.data)
    except ProtocolError:
        pass


# --- real encoders, real decoders ---------------------------------------------

WIDTH, HEIGHT, FPS, FRAMES = 160, 120, 25, 50


@dataclass(frozen=True)
class VideoClip:
    codec: str  # "h264" / "h265"
    aus: tuple[tuple[bytes, int, int, bool], ...]  # AVCC, pts, dts (1/FPS ticks), keyframe
    params: tuple[bytes, ...]  # (VPS,) SPS, PPS
    config: bytes  # avcC / hvcC built by hub.media.codec_config
    frame_digests: tuple[str, ...]  # decoding the encoder's own packets, in output order


@dataclass(frozen=True)
class AudioClip:
    asc: bytes
    frames: tuple[bytes, ...]  # raw AAC, 1024 samples each
    sample_rate: int


def annexb_nals(data: bytes) -> list[bytes]:
    return [n.rstrip(b"\x00") for n in re.split(b"\x00\x00\x01", data) if n.strip(b"\x00")]


def nal_type(codec: str, nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F if codec == "h265" else nal[0] & 0x1F


def avcc_nals(au: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(au):
        size = int.from_bytes(au[pos:pos + 4], "big")
        out.append(au[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out


def frame_digest(frame: av.VideoFrame) -> str:
    h = hashlib.sha1()
    for plane in frame.planes:
        h.update(bytes(plane))
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def video_clip(codec: str, slices: int = 1) -> VideoClip:
    enc = av.CodecContext.create("libx265" if codec == "h265" else "libx264", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base, enc.framerate, enc.gop_size = Fraction(1, FPS), Fraction(FPS), 25
    enc.thread_count = 1  # else x264 uses sliced threads and picks its own slice count
    if codec == "h265":
        enc.options = {"preset": "ultrafast", "x265-params": "log-level=none:bframes=2:open-gop=0"}
    else:
        enc.options = {"preset": "veryfast", "x264-params": f"slices={slices}"}
    graph = av.filter.Graph()
    src = graph.add("testsrc", f"size={WIDTH}x{HEIGHT}:rate={FPS}")
    sink = graph.add("buffersink")
    src.link_to(sink)
    graph.configure()
    packets = []
    for i in range(FRAMES):
        frame = sink.pull().reformat(format="yuv420p")
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.NONE  # testsrc marks every frame I
        packets += enc.encode(frame)
    packets += enc.encode(None)
    param_types = {32: 0, 33: 1, 34: 2} if codec == "h265" else {7: 0, 8: 1}
    params: dict[int, bytes] = {}
    aus = []
    for p in packets:
        nals = annexb_nals(bytes(p))
        body = []
        for nal in nals:
            t = nal_type(codec, nal)
            if t in param_types:
                params.setdefault(param_types[t], nal)
            elif t not in (9, 35):
                body.append(len(nal).to_bytes(4, "big") + nal)
        aus.append((b"".join(body), int(p.pts), int(p.dts), bool(p.is_keyframe)))
    ps = tuple(params[i] for i in sorted(params))
    config = hevc_decoder_config(ps[:1], ps[1:2], ps[2:]) if codec == "h265" \
        else avc_decoder_config(ps[:1], ps[1:])
    dec = av.CodecContext.create("hevc" if codec == "h265" else "h264", "r")
    digests = [frame_digest(f) for p in packets for f in dec.decode(p)]
    digests += [frame_digest(f) for f in dec.decode(None)]
    return VideoClip(codec, tuple(aus), ps, config, tuple(digests))


@functools.lru_cache(maxsize=None)
def audio_clip(count: int = 86) -> AudioClip:
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format = 44100, "mono", "fltp"
    out = []
    for i in range(count):
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        frame.sample_rate, frame.pts = 44100, i * 1024
        frame.planes[0].update(struct.pack(
            "<1024f", *(0.3 * math.sin((i * 1024 + k) * 0.06) for k in range(1024))))
        out += [bytes(p) for p in enc.encode(frame)]
    out += [bytes(p) for p in enc.encode(None)]
    return AudioClip(bytes(enc.extradata or b""), tuple(out), 44100)


@dataclass
class Decoded:
    codec: str
    width: int
    height: int
    video_pts: list[int]
    digests: list[str]
    audio_frames: int
    errors: list[str]


def decode_file(path: Path, fmt: str | None = None) -> Decoded:
    with av.logging.Capture() as logs:
        with av.open(str(path), format=fmt) as container:
            vs = container.streams.video[0]
            out = Decoded(vs.codec_context.name, 0, 0, [], [], 0, [])
            for packet in container.demux():
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        out.width, out.height = frame.width, frame.height
                        out.video_pts.append(int(frame.pts))
                        out.digests.append(frame_digest(frame))
                    else:
                        out.audio_frames += 1
    out.errors = [msg for level, _, msg in logs if level <= av.logging.ERROR]
    return out


TS_OFFSET_MS = 200  # keeps the first DTS (negative with B-frames) at or above zero


def mux_flv(clip: VideoClip, audio: AudioClip | None, hevc_mode: str = "enhanced") -> bytes:
    mux = FlvMuxer(clip.codec, hevc_mode=hevc_mode)  # type: ignore[arg-type]
    vid = 12 if hevc_mode == "legacy" else 7
    parts = [FlvMuxer.header(True, audio is not None),
             mux.metadata(WIDTH, HEIGHT, FPS, vid, 10 if audio else None, 44100, 1),
             mux.video_sequence_header(clip.config, 0)]
    if audio is not None:
        parts.append(mux.audio_sequence_header(audio.asc))
    tags: list[tuple[int, bytes]] = []
    for au, pts, dts, key in clip.aus:
        dts_ms = dts * 1000 // FPS + TS_OFFSET_MS
        tags.append((dts_ms, mux.video_tag(au, dts_ms, pts * 1000 // FPS + TS_OFFSET_MS, key)))
    for i, frame in enumerate(audio.frames if audio else ()):
        ts = i * 1024 * 1000 // 44100 + TS_OFFSET_MS
        tags.append((ts, mux.audio_tag(frame, ts)))
    tags.sort(key=lambda t: t[0])
    return b"".join(parts + [t for _, t in tags])


@pytest.mark.parametrize("codec, slices, hevc_mode", [
    ("h264", 1, "enhanced"),
    ("h264", 4, "enhanced"),
    ("h265", 1, "enhanced"),
])
def test_pyav_decodes_our_flv(tmp_path: Path, codec: str, slices: int, hevc_mode: str) -> None:
    clip = video_clip(codec, slices)
    audio = audio_clip()
    if slices > 1:  # really several slice NAL units per access unit
        assert all(sum(1 for n in avcc_nals(au) if nal_type(codec, n) in (1, 5)) == slices
                   for au, *_ in clip.aus)
    path = tmp_path / "out.flv"
    path.write_bytes(mux_flv(clip, audio, hevc_mode))
    got = decode_file(path, "flv")
    assert got.errors == []
    assert (got.codec, got.width, got.height) == (
        "hevc" if codec == "h265" else "h264", WIDTH, HEIGHT)
    assert len(got.digests) == FRAMES
    assert got.digests == list(clip.frame_digests)  # pixel-identical to the encoder's stream
    assert got.video_pts == sorted(got.video_pts) and len(set(got.video_pts)) == FRAMES
    assert got.audio_frames >= len(audio.frames) - 2


def test_hevc_legacy_stream_bytes() -> None:
    clip = video_clip("h265")
    data = mux_flv(clip, None, "legacy")
    reader = FlvReader()
    reader.feed(data)
    tags = [ev for ev in reader.events() if isinstance(ev, FlvTag) and ev.tag_type == TAG_VIDEO]
    assert tags[0].data == b"\x1c\x00\x00\x00\x00" + clip.config
    au, pts, dts, key = clip.aus[0]
    cts = (pts - dts) * 1000 // FPS
    assert tags[1].data == bytes((0x1C, 1)) + cts.to_bytes(3, "big", signed=True) + au
    assert len(tags) == 1 + len(clip.aus)
    inter = [t for t, (_, _, _, k) in zip(tags[1:], clip.aus) if not k]
    assert inter and all(t.data[:2] == b"\x2c\x01" for t in inter)
