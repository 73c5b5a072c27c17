"""The RTMP fan-out against the FLV fan-out it is made from: every FLV tag is
one RTMP message, byte for byte what `RtmpPlayMuxer` makes of it; the
keyframe offset points at the keyframe's message; the head has no FLV file
header. And a player the server closes is told the stream ended."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from hub.api.play.flv import FlvFanout
from hub.api.rtmp.fanout import RtmpConsumer, RtmpFanout
from hub.media.flv import TAG_AUDIO, TAG_HEADER_LEN, TAG_SCRIPT, TAG_VIDEO
from hub.media.rtmp import PAUSED, Play, RtmpPlayMuxer, RtmpServerConnection
from hub.media.rtmp import command as cmd
from hub.media.rtmp.constants import MSG_COMMAND_AMF0, MSG_USER_CONTROL, OUT_CHUNK_SIZE, STREAM_ID
from hub.media.rtmp.message import UserControl
from hub.media.stream_desc import AUDIO_AAC, StreamDesc, TrackDesc
from hub.ring import RingEntry
from tests.media.rtmp.rtmp_testkit import Client, drain, feed, handshake, read_messages
from tests.shard.ingest_helpers import PPS, SPS


class View:
    """What a fan-out asks of its stream view: the description and the GOP."""

    def __init__(self, desc: StreamDesc) -> None:
        self.desc = desc

    def gop(self) -> list[RingEntry]:
        return []


def desc(video: bool = True) -> StreamDesc:
    tracks = [TrackDesc(0, "audio", AUDIO_AAC, 97, 44100, 1, asc=bytes.fromhex("1208"), sample_rate=44100)]
    if video:
        tracks.insert(0, TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS, width=640, height=360,
                                   framerate=25.0))
        tracks[1].index = 1
    return StreamDesc(1 << 8, "/live/x", "nowhere", 1, "", tracks)


def entries(video: bool = True, key_at: int | None = 3) -> list[RingEntry]:
    out = []
    for i in range(6):
        if video and i % 2:
            size = 5996 if i == key_at else 96  # a keyframe longer than a chunk
            data = size.to_bytes(4, "big") + bytes((0x65 if i == key_at else 0x41,)) + bytes(size - 1)
            out.append(RingEntry(i, 0, 0, i == key_at, 3600 * i, 3600 * i, data))
        else:
            out.append(RingEntry(i, 1 if video else 0, 0, False, 1024 * i, 1024 * i, bytes(100 + i)))
    return out


def flv_tags(blob: bytes) -> list[bytes]:
    tags, pos = [], 0
    while pos < len(blob):
        end = pos + TAG_HEADER_LEN + int.from_bytes(blob[pos + 1:pos + 4], "big") + 4
        tags.append(blob[pos:end])
        pos = end
    return tags


def test_each_flv_tag_is_one_rtmp_message_and_the_keyframe_offset_follows() -> None:
    async def main() -> None:
        flv = FlvFanout(View(desc()), ws=False)  # type: ignore[arg-type]
        rtmp = RtmpFanout(View(desc()))  # type: ignore[arg-type]
        muxer = RtmpPlayMuxer()
        for key_at in (3, None, 1):
            blob, key = flv.mux(entries(key_at=key_at))
            tags = flv_tags(blob)
            messages = [muxer.from_flv_tag(t) for t in tags]
            got, offset = rtmp.mux(entries(key_at=key_at))
            assert got == b"".join(messages)
            if key_at is None:
                assert key == offset == -1
            else:
                index = [len(b"".join(tags[:i])) for i in range(len(tags))].index(key)
                assert offset == len(b"".join(messages[:index]))
                first = read_messages(got[offset:], OUT_CHUNK_SIZE)[0]
                assert first.type_id == TAG_VIDEO and first.body[0] == 0x17 and first.timestamp == 40 * key_at
        parsed = read_messages(got, OUT_CHUNK_SIZE)
        assert [m.type_id for m in parsed] == [TAG_AUDIO, TAG_VIDEO] * 3
        assert {(m.csid, m.stream_id) for m in parsed} == {(4, STREAM_ID), (6, STREAM_ID)}
        assert len(parsed[1].body) == 5 + 6000  # a frame longer than a chunk, reassembled

        head = read_messages(rtmp.head, OUT_CHUNK_SIZE)
        assert not rtmp.head.startswith(b"FLV") and b"FLV\x01" not in rtmp.head
        assert [m.type_id for m in head] == [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO]
        assert cmd.DataMessage.parse(head[0].body).metadata() is not None
        assert head[1].body[:2] == b"\x17\x00" and head[2].body[:2] == b"\xaf\x00"
        assert rtmp.head == b"".join(muxer.from_flv_tag(t) for t in flv_tags(flv.head[13:]))

        audio_only = RtmpFanout(View(desc(video=False)))  # type: ignore[arg-type]
        got, offset = audio_only.mux(entries(video=False))
        assert offset == 0 and [m.type_id for m in read_messages(got, OUT_CHUNK_SIZE)] == [TAG_AUDIO] * 6

    asyncio.run(main())


class _Sink(asyncio.Protocol):
    pass


def test_a_player_closed_by_the_server_is_told_the_stream_ended() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = RtmpServerConnection(0.0)
        client = Client()
        handshake(conn, client)
        drain(conn)
        feed(conn, client.connect("live"))
        conn.accept_connect()
        events = feed(conn, client.play_setup("x"))
        assert isinstance(events[-1], Play) and conn.next_event() is PAUSED
        conn.accept_play()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            transport, _ = await loop.connect_accepted_socket(_Sink, theirs)
            consumer = RtmpConsumer(transport, conn, "net=rtmp,x")
            consumer.close()
            data = bytearray()
            while chunk := await asyncio.wait_for(loop.sock_recv(ours, 65536), 5):
                data += chunk
            messages = read_messages(bytes(data), OUT_CHUNK_SIZE)
            assert [(m.type_id, m.stream_id) for m in messages] == [(MSG_USER_CONTROL, 0), (MSG_COMMAND_AMF0, STREAM_ID)]
            assert UserControl.parse(messages[0].body) == UserControl.of(1, STREAM_ID)  # Stream EOF
            status: Any = cmd.Command.parse(messages[1].body).args[0]
            assert status["code"] == cmd.PLAY_UNPUBLISH_NOTIFY
        finally:
            ours.close()

    asyncio.run(main())
