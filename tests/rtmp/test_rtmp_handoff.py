"""The publisher hand-off, in one process: a front's engine runs a scripted
client up to `publish`, an `RtmpPublishHost` adopts the other end of a
socketpair with every byte that engine read, and the client carries on as if
nothing moved. Checked: what the client receives after the move (only the
publish answer, byte-exact: the replay's output is not sent twice), that the
chunk stream's state crossed the move (a chunk size set before `connect`, a
message begun before the move and finished after, compressed headers that
lean on headers read before it), and what reaches the ring.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any

import pytest

from hub.child import ChildArgs
from hub.config import Config
from hub.media.codec_config import avc_decoder_config
from hub.media.rtmp import NEED_DATA, PAUSED, Connect, Publish, RtmpServerConnection
from hub.media.rtmp import command as cmd
from hub.media.rtmp.constants import OUT_CHUNK_SIZE, STREAM_ID
from hub.media.stream_desc import AUDIO_AAC
from hub.ring import RingReader
from hub.shard.rtmp_publish import RtmpPublisher, RtmpPublishHost
from hub.shard.streams import StreamTable
from tests.media.rtmp.rtmp_testkit import Client, Counter, commands_in, read_messages
from tests.shard.ingest_helpers import PPS, SPS

ASC = bytes.fromhex("1208")  # AAC LC, 44.1 kHz, mono
RECORD = avc_decoder_config([SPS], [PPS])


def idr(n: int) -> bytes:
    nal = bytes((0x65,)) + bytes((n + i) % 251 for i in range(5000))  # longer than a chunk
    return len(nal).to_bytes(4, "big") + nal


def p_frame(n: int) -> bytes:
    nal = bytes((0x41,)) + bytes((n * 7 + i) % 251 for i in range(300))
    return len(nal).to_bytes(4, "big") + nal


def video(key: bool, body: bytes, cts: int = 0) -> bytes:
    return bytes((0x17 if key else 0x27, 1)) + cts.to_bytes(3, "big") + body


def front_engine(client: Client, name: str = "Cam1") -> tuple[bytes, bytes]:
    """Run the front's engine on the client's handshake and commands; return
    (every byte it read, every byte it wrote)."""
    front = RtmpServerConnection(0.0, random_bytes=Counter(b"front"))
    read = client.c0c1
    front.receive_data(client.c0c1, 0.0)
    assert front.next_event() is NEED_DATA
    written = front.data_to_send()
    setup = client.c2(written) + client.connect("live") + client.publish_setup(f"{name}?user=u&pass=p")
    read += setup
    front.receive_data(setup, 0.0)
    events: list[object] = []
    while (ev := front.next_event()) not in (NEED_DATA, PAUSED):
        events.append(ev)
    assert isinstance(events[-1], Connect)
    written += front.accept_connect()
    later: list[object] = []
    while (ev := front.next_event()) not in (NEED_DATA, PAUSED):
        later.append(ev)
    assert later[-1] == Publish(f"/live/{name}", "live", name, {"user": "u", "pass": "p"}, "live")
    return read, written + front.data_to_send()


def make_host() -> RtmpPublishHost:
    config = Config(rtsp_session_timeout=30.0, shards=1, fronts=1)
    args = ChildArgs("shard", 0, -1, "tr" + os.urandom(4).hex(), tempfile.gettempdir(), config)
    return RtmpPublishHost(args, StreamTable(args, lambda reader, s: None))


async def recv_some(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)


def test_publisher_carries_on_after_the_move() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        host = make_host()
        client = Client(scheme=0, chunk_size=1000)  # Set Chunk Size before connect
        read, written = front_engine(client)
        out_front = commands_in(written[3073:], chunk_size=OUT_CHUNK_SIZE)
        assert [c.name for _, c in out_front] == ["_result", "_result", "_result", "_result"]

        # Media the client sent right behind `publish`, read by the front in
        # the same read: part of the hand-off. The second message is cut in
        # the middle of a chunk; the rest comes over the socket.
        meta = client.data("@setDataFrame", "onMetaData",
                           {"videocodecid": 7.0, "audiocodecid": 10.0, "framerate": 25.0})
        head = b"".join((meta, client.media(9, 0, bytes((0x17, 0, 0, 0, 0)) + RECORD),
                         client.media(8, 0, bytes((0xAF, 0)) + ASC)))
        first = client.media(9, 0, video(True, idr(0)))
        cut = len(first) // 2
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            task = loop.create_task(host.adopt(os.dup(theirs.fileno()), "/live/cam1", "1.2.3.4:5",
                                               read + head + first[:cut]))
            theirs.close()
            session = await asyncio.wait_for(task, 5)
            assert isinstance(session, RtmpPublisher)
            answer = await recv_some(loop, ours)
            messages = read_messages(answer, OUT_CHUNK_SIZE)
            # Only the publish answer: nothing the front had already sent.
            assert [(m.stream_id, cmd.Command.parse(m.body)) for m in messages] == [
                (STREAM_ID, cmd.on_status(cmd.PUBLISH_START, "/live/Cam1 is now published."))]
            assert session.ingest.live  # both announced tracks are configured
            stream = session.ingest.stream
            assert stream is not None
            v, a = stream.tracks
            assert (v.index, v.codec, v.payload_type, v.clock_rate, v.width, v.height, v.framerate) == \
                (0, "H264", 96, 90000, 640, 360, 25.0)
            assert (v.sps, v.pps) == (SPS, PPS) and "sprop-parameter-sets=" in v.fmtp
            assert (a.index, a.codec, a.payload_type, a.clock_rate, a.channels, a.asc) == \
                (1, AUDIO_AAC, 97, 44100, 1, ASC)

            rest = [first[cut:]]  # compressed headers from here on (the writer's choice)
            for i in range(1, 6):
                rest.append(client.media(8, 23 * i - 10, bytes((0xAF, 1)) + bytes(200 + i)))
                rest.append(client.media(9, 40 * i, video(False, p_frame(i), cts=40)))
            await loop.sock_sendall(ours, b"".join(rest))
            for _ in range(50):
                if session.ingest.stats().units_in >= 11:
                    break
                await asyncio.sleep(0.02)
            reader = RingReader.attach(stream.ring.name)
            try:
                entries = reader.read(100)
            finally:
                reader.close()
            vid = [e for e in entries if e.track == 0]
            aud = [e for e in entries if e.track == 1]
            assert [e.keyframe for e in vid] == [True] + [False] * 5
            assert bytes(vid[0].data) == idr(0) and bytes(vid[3].data) == p_frame(3)
            assert [e.dts - vid[0].dts for e in vid] == [3600 * i for i in range(6)]
            assert [e.pts - e.dts for e in vid] == [0] + [3600] * 5
            assert [len(e.data) for e in aud] == [200 + i for i in range(1, 6)]
            assert [e.pts - aud[0].pts for e in aud] == [round((23 * i - 10) * 44.1) - round(13 * 44.1)
                                                          for i in range(1, 6)]
            assert session.dropped == 0 and stream.size == len(read + head) + cut + sum(map(len, rest))

            # The publisher ends its stream; the stream ends with it.
            await loop.sock_sendall(ours, client.command("FCUnpublish", None, "Cam1")
                                    + client.command("deleteStream", None, 1.0))
            for _ in range(50):
                if session.closed:
                    break
                await asyncio.sleep(0.02)
            assert session.closed and stream.closed and host.sessions == set()
        finally:
            ours.close()
            host.close()
            host.streams.close_all()

    asyncio.run(asyncio.wait_for(main(), 20))


@pytest.mark.parametrize("path", ["/live/other", "/live/cam1/x"])
def test_a_handed_path_that_is_not_the_publish_is_refused(path: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        host = make_host()
        read, _ = front_engine(Client())
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            session = await host.adopt(os.dup(theirs.fileno()), path, "1.2.3.4:5", read)
            theirs.close()
            answer = await recv_some(loop, ours)
            status: Any = [c for _, c in commands_in(answer, OUT_CHUNK_SIZE)][0].args[0]
            assert status["code"] == cmd.PUBLISH_BAD_NAME
            assert session.closed and host.streams.get(path) is None
            assert await recv_some(loop, ours) == b""
        finally:
            ours.close()
            host.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_frames_before_any_sequence_header_are_dropped_then_live_at_the_first_configured_frame() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        host = make_host()
        client = Client()
        read, _ = front_engine(client)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        try:
            session = await host.adopt(os.dup(theirs.fileno()), "/live/cam1", "1.2.3.4:5", read)
            theirs.close()
            await recv_some(loop, ours)
            blob: list[Any] = [client.media(9, 0, video(True, idr(1))),          # no avcC yet: dropped
                               client.media(8, 0, bytes((0xAF, 1)) + bytes(50)),  # no ASC yet: dropped
                               client.media(9, 40, bytes((0x17, 0, 0, 0, 0)) + RECORD)]
            await loop.sock_sendall(ours, b"".join(blob))
            await asyncio.sleep(0.1)
            assert not session.ingest.live and session.dropped == 2  # no metadata: waits for a frame
            await loop.sock_sendall(ours, client.media(9, 80, video(True, idr(2))))
            for _ in range(50):
                if session.ingest.live:
                    break
                await asyncio.sleep(0.02)
            stream = session.ingest.stream
            assert stream is not None and [t.codec for t in stream.tracks] == ["H264"]
            await loop.sock_sendall(ours, client.media(8, 90, bytes((0xAF, 0)) + ASC))
            await asyncio.sleep(0.1)
            assert [t.codec for t in stream.tracks] == ["H264"] and session.dropped == 3
        finally:
            ours.close()
            host.close()
            host.streams.close_all()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_malformed_media_closes_only_that_publisher() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        host = make_host()
        sessions = []
        socks = []
        try:
            for path in ("/live/a", "/live/b"):
                client = Client()
                read, _ = front_engine(client, path.rsplit("/", 1)[1])
                ours, theirs = socket.socketpair()
                ours.setblocking(False)
                socks.append((ours, client))
                sessions.append(await host.adopt(os.dup(theirs.fileno()), path, "1.2.3.4:5", read))
                theirs.close()
                await recv_some(loop, ours)
            for ours, client in socks:
                await loop.sock_sendall(ours, client.media(9, 0, bytes((0x17, 0, 0, 0, 0)) + RECORD)
                                        + client.media(9, 0, video(True, idr(0))))
            await asyncio.sleep(0.1)
            assert all(s.ingest.live for s in sessions)
            bad, client = socks[0]
            # A NAL length past the end of the frame.
            await loop.sock_sendall(bad, client.media(9, 40, video(False, b"\x00\x00\x10\x00\x41\x00")))
            assert await recv_some(loop, bad) == b""
            assert sessions[0].closed and host.streams.get("/live/a") is None
            assert not sessions[1].closed and host.streams.get("/live/b") is not None
        finally:
            for s, _ in socks:
                s.close()
            host.close()
            host.streams.close_all()

    asyncio.run(asyncio.wait_for(main(), 20))

