"""The shared play mux: the same bytes for every player, readable after any
player's own connection bytes, whatever that player received before."""

from __future__ import annotations

import pytest

from hub.media import amf0
from hub.media.flv import FlvMuxer
from hub.media.rtmp import PAUSED, RtmpPlayMuxer, RtmpServerConnection
from hub.media.rtmp.chunk import ChunkReader
from hub.media.rtmp.media import parse_media
from rtmp_testkit import Client, Counter, feed, handshake

AVCC = bytes.fromhex("0164000affe1000467640000" "01000468ee3cb0")


def _au(size: int, fill: int) -> bytes:
    return (size - 4).to_bytes(4, "big") + bytes((0x65,)) + bytes((fill,)) * (size - 5)


def test_video_message_bytes_exact() -> None:
    body = b"\x17\x01\x00\x00\x28" + _au(5000, 7)
    out = RtmpPlayMuxer().video(body, 1040)
    assert out == (bytes.fromhex("06 000410 00138d 09 01000000") + body[:4096]
                   + b"\xc6" + body[4096:])


def test_audio_and_data_chunk_streams() -> None:
    mux = RtmpPlayMuxer()
    assert mux.audio(b"\xaf\x01\x21", 23) == bytes.fromhex("04 000017 000003 08 01000000 af0121")
    meta = amf0.encode("onMetaData", amf0.EcmaArray(width=320.0))
    assert mux.data(meta) == bytes.fromhex("05 000000") + len(meta).to_bytes(3, "big") + b"\x12\x01\x00\x00\x00" + meta
    with pytest.raises(ValueError):
        mux.message(20, 0, b"x")


def test_extended_timestamp_repeated_on_every_chunk() -> None:
    body = bytes(9000)
    ts = 0x01000000 + 40  # 4.66 hours in
    out = RtmpPlayMuxer().video(body, ts)
    ext = ts.to_bytes(4, "big")
    assert out == (bytes.fromhex("06 ffffff 002328 09 01000000") + ext + body[:4096]
                   + b"\xc6" + ext + body[4096:8192] + b"\xc6" + ext + body[8192:])


def test_from_flv_tag_is_the_same_as_building_from_the_body() -> None:
    flv = FlvMuxer("h264")
    mux = RtmpPlayMuxer()
    au = _au(6000, 1)
    tag = flv.video_tag(au, 2000, 2080, keyframe=True)
    assert mux.from_flv_tag(tag) == mux.video(tag[11:-4], 2000)
    assert mux.from_flv_tag(memoryview(tag)) == mux.video(tag[11:-4], 2000)
    big_ts = flv.audio_tag(b"\x21\x00", 0x87654321)
    assert mux.from_flv_tag(big_ts) == mux.audio(b"\xaf\x01\x21\x00", 0x87654321)
    for bad in (tag[:-1], tag[:10], tag + b"\x00"):
        with pytest.raises(ValueError):
            mux.from_flv_tag(bad)


def _player_reads(conn_bytes: bytes, shared: bytes) -> list[tuple[int, int, int, bytes]]:
    reader = ChunkReader()
    reader.feed(conn_bytes + shared)
    out = []
    while (m := reader.next_message()) is not None:
        if m.type_id in (8, 9):
            out.append((m.type_id, m.stream_id, m.timestamp, bytes(m.body)))
    return out


def _player() -> bytes:
    """Everything a fresh player's connection sent it up to accept_play."""
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
    client = Client()
    handshake(conn, client)
    feed(conn, client.connect())
    sent = conn.accept_connect()
    feed(conn, client.play_setup())
    assert conn.next_event() is PAUSED
    return sent + conn.accept_play()


def test_every_player_reads_the_same_bytes_from_any_point() -> None:
    flv = FlvMuxer("h264")
    mux = RtmpPlayMuxer()
    seq = mux.from_flv_tag(flv.video_sequence_header(AVCC, 0))
    gop = [mux.from_flv_tag(flv.video_tag(_au(300 + 2000 * (i == 0), i), 40 * i, 40 * i, i == 0))
           for i in range(5)]
    gop2 = [mux.from_flv_tag(flv.video_tag(_au(9000 if i == 0 else 700, i), 200 + 40 * i,
                                           200 + 40 * i, i == 0)) for i in range(3)]
    shared_all = seq + b"".join(gop + gop2)
    early = _player_reads(_player(), shared_all)
    late = _player_reads(_player(), seq + b"".join(gop2))  # joined at the second keyframe
    assert [m[2] for m in early] == [0, 0, 40, 80, 120, 160, 200, 240, 280]
    assert late == [early[0]] + early[6:]
    assert all(m[1] == 1 for m in early)
    units = [parse_media(m[0], m[2], m[3]) for m in late]
    assert [(u.config, u.keyframe, u.dts) for u in units if u is not None] == [
        (True, True, 0), (False, True, 200), (False, False, 240), (False, False, 280)]
