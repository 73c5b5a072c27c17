"""Real publishers' transcripts (tests/data/rtmp_*_publish.bin, captured with
make_rtmp_fixtures.py): parsed byte-exactly, replayed through the server
connection whole, byte by byte and in odd pieces."""

from __future__ import annotations

import random

import pytest

from hub.media.rtmp import (
    NEED_DATA, PAUSED, Connect, DeleteStream, HandshakeDone, MediaUnit, Metadata, Publish,
    RtmpServerConnection, RtmpState, Unpublish,
)
from hub.media.rtmp import command as cmd
from hub.media.rtmp.chunk import ChunkWriter
from hub.media.rtmp.command import Command
from hub.media.rtmp.handshake import SERVER_VERSION
from hub.media.rtmp.media import avc_parameter_sets, hevc_parameter_sets
from hub.media.rtmp.message import SetChunkSize
from rtmp_testkit import DATA, read_messages

H264 = (DATA / "rtmp_ffmpeg_publish.bin").read_bytes()
HEVC = (DATA / "rtmp_ffmpeg8_hevc_publish.bin").read_bytes()
HS = 1 + 1536 + 1536


@pytest.mark.parametrize("data", [H264, HEVC], ids=["h264", "hevc"])
def test_rechunking_the_parsed_messages_gives_the_same_bytes(data: bytes) -> None:
    """bytes(parsed) == original: FFmpeg's header compression, redone by our
    writer from the parsed messages, is the captured chunk stream exactly.
    (FFmpeg's rtmp_write also forces a fmt 0 header on data messages and on
    media at timestamp 0.)"""
    messages = read_messages(data[HS:])
    writer = ChunkWriter(compress=True)
    out = []
    for m in messages:
        force = m.type_id == 18 or (m.type_id in (8, 9) and m.timestamp == 0)
        out.append(writer.write(m.csid, m.type_id, m.stream_id, m.timestamp, m.body,
                                fmt=0 if force else None))
        if m.type_id == 1:
            writer.chunk_size = SetChunkSize.parse(m.body).size
    assert b"".join(out) == data[HS:]
    assert SetChunkSize.parse(messages[1].body) == SetChunkSize(4096)


class _Replay:
    """Random bytes that make our S1 the one FFmpeg echoed in its C2."""

    def __init__(self, c2: bytes) -> None:
        self.parts = [c2[8:]]

    def __call__(self, n: int) -> bytes:
        return self.parts.pop(0) if self.parts else bytes(n)


def _replay(data: bytes, pieces: list[int] | None) -> tuple[list[object], bytes]:
    conn = RtmpServerConnection(0.0, random_bytes=_Replay(data[1537:HS]))
    events: list[object] = []
    sent: list[bytes] = []
    chunks: list[bytes] = []
    if pieces is None:
        chunks = [data]
    else:
        pos = 0
        for size in pieces:
            chunks.append(data[pos:pos + size])
            pos += size
    for piece in chunks:
        conn.receive_data(piece, 0.0)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                break
            if ev is PAUSED:
                sent.append(conn.accept_connect() if conn.state is RtmpState.CONNECTING
                            else conn.accept_publish())
                continue
            if isinstance(ev, MediaUnit):
                events.append((ev.kind, ev.codec, ev.dts, ev.pts, ev.keyframe, ev.config, bytes(ev.data)))
            else:
                events.append(ev)
        sent.append(conn.data_to_send())
    return events, b"".join(sent)


@pytest.fixture(scope="module")
def h264_replay() -> tuple[list[object], bytes]:
    return _replay(H264, None)


def test_ffmpeg_h264_publish_events(h264_replay: tuple[list[object], bytes]) -> None:
    events, sent = h264_replay
    assert events[0] == HandshakeDone(0, bytes((9, 0, 124, 2)))
    connect = events[1]
    assert isinstance(connect, Connect)
    assert (connect.app, connect.query) == ("live", {})
    assert connect.tc_url.startswith("rtmp://127.0.0.1:") and connect.tc_url.endswith("/live")
    assert connect.flash_ver.startswith("FMLE/3.0 (compatible; Lavf59.")
    assert events[2] == Publish("/live/cam1", "live", "cam1", {}, "live")
    meta = events[3]
    assert isinstance(meta, Metadata)
    assert {k: meta.values[k] for k in ("width", "height", "framerate", "videocodecid",
                                        "audiocodecid", "audiosamplerate", "stereo")} == {
        "width": 320.0, "height": 240.0, "framerate": 25.0, "videocodecid": 7.0,
        "audiocodecid": 10.0, "audiosamplerate": 44100.0, "stereo": False}
    assert events[-2:] == [Unpublish("/live/cam1"), DeleteStream(1)]
    units = [e for e in events if isinstance(e, tuple)]
    video = [u for u in units if u[0] == "video"]
    audio = [u for u in units if u[0] == "audio"]
    # The decoder configuration first, then 25 frames of one second.
    assert video[0][1:6] == ("h264", 0, 0, True, True)
    sps, pps = avc_parameter_sets(video[0][6])  # type: ignore[arg-type]
    assert len(sps) == 1 and len(pps) == 1 and sps[0][0] & 0x1F == 7 and pps[0][0] & 0x1F == 8
    assert sps[0][1] == 100  # High profile (libx264's default)
    frames = video[1:]
    assert len(frames) == 25
    assert [f[2] for f in frames] == [40 * i for i in range(25)]
    assert frames[0][4] and all(f[3] >= f[2] for f in frames)  # B-frames: pts >= dts
    assert sorted(f[3] for f in frames) == [80 + 40 * i for i in range(25)]
    # AAC LC, 44.1 kHz, mono, plus FFmpeg's "no SBR" sync extension (0x2b7, type 5, 0).
    assert audio[0][1:] == ("aac", 0, 0, True, True, bytes.fromhex("1208 56e500"))
    assert len(audio) == 46 and all(a[5] is False for a in audio[1:])
    dts = [a[2] for a in audio[1:]]
    assert dts == sorted(dts) and dts[-1] >= 950
    # Our answers: S0+S1 is what FFmpeg echoed as C2 (byte-exact), then S2.
    assert sent[:1537] == b"\x03" + H264[1537:HS]
    assert sent[5:9] == SERVER_VERSION
    answers = [(m.stream_id, Command.parse(m.body)) for m in read_messages(sent[HS:]) if m.type_id == 20]
    assert answers == [
        (0, cmd.connect_result(1.0)), (0, cmd.result(2.0)), (0, cmd.result(3.0)),
        (0, cmd.result(4.0, None, 1.0)),
        (1, cmd.on_status(cmd.PUBLISH_START, "/live/cam1 is now published.")),
        (0, cmd.result(6.0)),
        (1, cmd.on_status(cmd.UNPUBLISH_SUCCESS, "/live/cam1 is now unpublished.")),
    ]


def test_ffmpeg_h264_publish_byte_by_byte_and_in_pieces(h264_replay: tuple[list[object], bytes]) -> None:
    assert _replay(H264, [1] * len(H264)) == h264_replay
    rng = random.Random(13)
    sizes: list[int] = []
    while sum(sizes) < len(H264):
        sizes.append(rng.randint(1, 5000))
    assert _replay(H264, sizes) == h264_replay


def test_ffmpeg_h264_publish_with_trailing_partial_chunk(h264_replay: tuple[list[object], bytes]) -> None:
    events, _ = _replay(H264 + H264[HS:HS + 50], None)
    assert events == h264_replay[0]


def test_ffmpeg8_hevc_publish_is_enhanced_rtmp() -> None:
    events, _ = _replay(HEVC, None)
    connect, publish, meta = events[1:4]
    assert isinstance(connect, Connect) and connect.flash_ver.startswith("FMLE/3.0 (compatible; Lavf62.")
    assert publish == Publish("/live/cam1", "live", "cam1", {}, "live")
    assert isinstance(meta, Metadata) and meta.values["videocodecid"] == float(int.from_bytes(b"hvc1", "big"))
    video = [e for e in events if isinstance(e, tuple)]
    assert video[0][:6] == ("video", "h265", 0, 0, True, True)
    vps, sps, pps = hevc_parameter_sets(video[0][6])  # type: ignore[arg-type]
    assert (len(vps), len(sps), len(pps)) == (1, 1, 1)
    assert [(n[0] >> 1) & 0x3F for n in (vps[0], sps[0], pps[0])] == [32, 33, 34]
    frames = video[1:]
    assert [f[2] for f in frames] == [40 * i for i in range(25)]
    assert all(f[2] == f[3] for f in frames)  # no B-frames: CodedFramesX, no composition time
    assert frames[0][4] and not frames[1][4]
    # Each frame's first NAL type agrees with its key flag (IDR/CRA vs TRAIL).
    for f in frames:
        nal_type = (f[6][4] >> 1) & 0x3F  # type: ignore[index]
        assert (16 <= nal_type <= 21) == f[4]
    assert events[-2:] == [Unpublish("/live/cam1"), DeleteStream(1)]
