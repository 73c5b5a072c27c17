"""The server connection state machine, driven by a scripted client."""

from __future__ import annotations

import pytest

from hub.media import amf0
from hub.media.flv import FlvMuxer
from hub.media.rtmp import (
    NEED_DATA, PAUSED, Connect, DeleteStream, HandshakeDone, MediaUnit, Metadata, Play,
    PingResponse, Publish, RtmpProtocolError, RtmpServerConnection, RtmpState, TimedOut,
    Unpublish,
)
from hub.media.rtmp import command as cmd
from hub.media.rtmp.command import Command
from hub.media.rtmp.constants import MAX_COMMAND_LEN, MSG_AGGREGATE
from hub.media.rtmp.handshake import CLIENT_VERSION, check_server_answer
from hub.media.rtmp.message import UserControl, WindowAckSize
from hub.media.rtmp.chunk import chunk_header
from hub.media.rtmp.server import AMF_BURST, AMF_RATE, MAX_RECEIVE_BUFFER, MESSAGE_BURST, MESSAGE_RATE
from rtmp_testkit import Client, Counter, commands_in, drain, feed, handshake, read_messages

AVCC = bytes.fromhex("0164000affe1000467640000" "01000468ee3cb0")
AU = b"\x00\x00\x00\x02\x65\x88"


def _connected(app: str = "live", now: float = 0.0) -> tuple[RtmpServerConnection, Client]:
    conn = RtmpServerConnection(now, random_bytes=Counter(b"server"))
    client = Client()
    handshake(conn, client)
    events = feed(conn, client.connect(app), now=now)
    assert [type(e) for e in events] == [HandshakeDone, Connect]
    assert conn.next_event() is PAUSED
    conn.accept_connect()
    return conn, client


def test_handshake_digest_answer_and_event() -> None:
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"server"))
    client = Client(scheme=1)
    answer = handshake(conn, client)
    assert check_server_answer(answer, client.c1).scheme == 1
    assert drain(conn) == [HandshakeDone(1, CLIENT_VERSION)]
    assert conn.state is RtmpState.WAIT_CONNECT


def test_connect_accept_bytes_exact() -> None:
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"server"))
    client = Client()
    handshake(conn, client)
    events = feed(conn, client.connect("live?token=abc", objectEncoding=0.0, fpad=False))
    connect = events[1]
    assert connect == Connect("live", "rtmp://h/live?token=abc", {"token": "abc"}, "FMLE/3.0",
                              {"app": "live?token=abc", "type": "nonprivate", "flashVer": "FMLE/3.0",
                               "tcUrl": "rtmp://h/live?token=abc", "objectEncoding": 0.0,
                               "fpad": False})
    assert conn.state is RtmpState.CONNECTING and conn.get_timer() is None
    assert conn.next_event() is PAUSED
    out = conn.accept_connect()
    result = bytes(cmd.connect_result(1.0, 0.0))
    assert out == (bytes.fromhex("02 000000 000004 05 00000000 002625a0")
                   + bytes.fromhex("02 000000 000005 06 00000000 002625a0 02")
                   + bytes.fromhex("02 000000 000004 01 00000000 00001000")
                   + bytes.fromhex("03 000000") + len(result).to_bytes(3, "big")
                   + bytes.fromhex("14 00000000") + result)
    assert conn.state is RtmpState.CONNECTED and conn.get_timer() == 10.0


def test_publish_flow() -> None:
    conn, client = _connected("live")
    out = feed(conn, client.publish_setup("cam1?user=u&pass=p"))
    assert out == [Publish("/live/cam1", "live", "cam1", {"user": "u", "pass": "p"}, "live")]
    answers = commands_in(conn.data_to_send(), 4096)
    assert answers == [(0, cmd.result(2.0)), (0, cmd.result(3.0)), (0, cmd.result(4.0, None, 1.0))]
    # Media pipelined behind publish waits until the decision.
    meta = amf0.EcmaArray(width=320.0)
    pipelined = (client.data("@setDataFrame", "onMetaData", meta)
                 + client.media(9, 0, b"\x17\x00\x00\x00\x00" + AVCC)
                 + client.media(9, 40, b"\x17\x01\x00\x00\x28" + AU))
    assert feed(conn, pipelined) == []
    assert conn.next_event() is PAUSED
    status = commands_in(conn.accept_publish(), 4096)
    assert status == [(1, cmd.on_status(cmd.PUBLISH_START, "/live/cam1 is now published."))]
    events = drain(conn)
    assert events[0] == Metadata({"width": 320.0})
    units = [(e.codec, e.dts, e.pts, e.keyframe, e.config, bytes(e.data)) for e in events[1:]
             if isinstance(e, MediaUnit)]
    assert units == [("h264", 0, 0, True, True, AVCC), ("h264", 40, 80, True, False, AU)]
    # Ending: FCUnpublish then deleteStream, as FFmpeg does.
    events = feed(conn, client.command("FCUnpublish", None, "cam1")
                  + client.command("deleteStream", None, 1.0))
    assert events == [Unpublish("/live/cam1"), DeleteStream(1)]
    answers = commands_in(conn.data_to_send(), 4096)
    assert answers == [(0, cmd.result(6.0)),
                       (1, cmd.on_status(cmd.UNPUBLISH_SUCCESS, "/live/cam1 is now unpublished."))]
    assert conn.state is RtmpState.CONNECTED


def test_events_do_not_depend_on_how_bytes_arrive() -> None:
    client = Client(chunk_size=200)
    first = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
    answer = first.receive_data(client.c0c1, 0.0)
    assert answer is None and first.next_event() is NEED_DATA
    c2 = client.c2(first.data_to_send())
    stream = (client.c0c1 + c2 + client.connect() + client.publish_setup()
              + client.media(9, 0, b"\x17\x00\x00\x00\x00" + AVCC)
              + b"".join(client.media(9, 40 * i, b"\x27\x01\x00\x00\x00" + AU * 100) for i in range(1, 5))
              + client.media(8, 10, b"\xaf\x00\x12\x10"))

    def run(pieces: list[int] | None, tail: bytes = b"") -> list[object]:
        conn = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
        events: list[object] = []
        data = stream + tail
        chunks = [data] if pieces is None else []
        if pieces is not None:
            pos = 0
            for size in pieces:
                chunks.append(data[pos:pos + size])
                pos += size
            chunks.append(data[pos:])
        for piece in chunks:
            conn.receive_data(piece, 0.0)
            while True:
                ev = conn.next_event()
                if ev is NEED_DATA:
                    break
                if ev is PAUSED:
                    conn.accept_connect() if conn.state is RtmpState.CONNECTING else conn.accept_publish()
                    continue
                events.append(ev if not isinstance(ev, MediaUnit) else (ev.dts, bytes(ev.data)))
        return events

    whole = run(None)
    assert [type(e).__name__ for e in whole[:3]] == ["HandshakeDone", "Connect", "Publish"]
    assert len(whole) == 9
    assert run([1] * len(stream)) == whole
    assert run([1537, 1536, 3, 700, 5, 1000]) == whole
    assert run(None, tail=stream[3073:3073 + 20]) == whole  # trailing bytes: a partial chunk


def test_rejections_close() -> None:
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
    client = Client()
    handshake(conn, client)
    feed(conn, client.connect())
    out = conn.reject_connect("nope")
    assert commands_in(out) == [(0, cmd.error(1.0, cmd.CONNECT_REJECTED, "nope"))]
    assert conn.closed and conn.get_timer() is None
    conn.receive_data(b"garbage", 1.0)
    assert conn.next_event() is NEED_DATA and conn.data_to_send() == b""

    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.data_to_send()
    out = conn.reject_publish("taken")
    assert commands_in(out, 4096) == [
        (1, cmd.on_status(cmd.PUBLISH_BAD_NAME, "taken", "error"))]
    assert conn.closed
    with pytest.raises(RuntimeError):
        conn.accept_publish()


def test_play_flow() -> None:
    conn, client = _connected("live")
    events = feed(conn, client.play_setup("cam1?token=t"))
    assert events == [Play("/live/cam1", "live", "cam1", {"token": "t"}, -1000.0)]
    conn.data_to_send()
    out = conn.accept_play()
    msgs = read_messages(out, 4096)
    assert [(m.csid, m.type_id, m.stream_id) for m in msgs] == [(2, 4, 0), (3, 20, 1), (3, 20, 1), (3, 18, 1)]
    assert UserControl.parse(msgs[0].body) == UserControl.of(0, 1)
    assert Command.parse(msgs[1].body) == cmd.on_status(cmd.PLAY_RESET, "Playing and resetting /live/cam1.")
    assert Command.parse(msgs[2].body) == cmd.on_status(cmd.PLAY_START, "Started playing /live/cam1.")
    assert msgs[3].body == amf0.encode("|RtmpSampleAccess", True, True)
    assert conn.state is RtmpState.PLAYING and conn.get_timer() is None
    end = read_messages(conn.end_play("bye"), 4096)
    assert UserControl.parse(end[0].body) == UserControl.of(1, 1)
    assert Command.parse(end[1].body) == cmd.on_status(cmd.PLAY_UNPUBLISH_NOTIFY, "bye")
    assert feed(conn, client.command("deleteStream", None, 1.0)) == [DeleteStream(1)]

    conn, client = _connected("live")
    feed(conn, client.play_setup("none"))
    conn.data_to_send()
    msgs = read_messages(conn.play_not_found(), 4096)
    assert Command.parse(msgs[0].body) == cmd.on_status(cmd.PLAY_STREAM_NOT_FOUND, "Stream not found.", "error")
    assert conn.closed


def test_unknown_commands_are_ignored_and_known_ones_checked() -> None:
    conn, client = _connected()
    assert feed(conn, client.command("getStreamLength", None, "cam1")
                + client.command("_checkbw") + client.command("FCSubscribe", None, "x")) == []
    assert conn.ignored == 3 and conn.data_to_send() == b""
    with pytest.raises(RtmpProtocolError, match="connect in state connected"):
        feed(conn, client.command("connect", {"app": "x"}))


@pytest.mark.parametrize("script, why", [
    (lambda c: c.command("publish", None, "cam1", stream_id=1), "publish in state wait_connect"),
    (lambda c: c.command("connect", None), "without a command object"),
    (lambda c: c.command("connect", {"app": "a" * 2000}), "too long"),
])
def test_bad_before_connect(script: object, why: str) -> None:
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
    client = Client()
    handshake(conn, client)
    assert callable(script)
    with pytest.raises(RtmpProtocolError, match=why):
        feed(conn, script(client))


@pytest.mark.parametrize("script, why", [
    (lambda c: c.command("publish", None, "cam1", stream_id=0), "publish on stream 0"),
    (lambda c: c.command("play", None, "", stream_id=1), "empty stream name"),
    (lambda c: c.command("publish", None, "x?" + "&".join(f"k{i}=v" for i in range(40)), stream_id=1),
     "too many query"),
])
def test_bad_stream_requests(script: object, why: str) -> None:
    conn, client = _connected()
    assert callable(script)
    with pytest.raises(RtmpProtocolError, match=why):
        feed(conn, script(client))


def test_media_outside_a_publish_is_ignored() -> None:
    conn, client = _connected()
    assert feed(conn, client.media(9, 0, b"\x17\x00\x00\x00\x00" + AVCC)) == []
    assert conn.ignored == 1


def test_ping_both_ways() -> None:
    conn, client = _connected()
    conn.data_to_send()
    feed(conn, client.writer.write(2, 4, 0, 0, bytes(UserControl.of(6, 123456))))
    (msg,) = read_messages(conn.data_to_send(), 4096)
    assert UserControl.parse(msg.body) == UserControl.of(7, 123456)
    ping = read_messages(conn.ping(12.5), 4096)
    assert UserControl.parse(ping[0].body) == UserControl.of(6, 12500)
    assert feed(conn, client.writer.write(2, 4, 0, 0, bytes(UserControl.of(7, 12500)))) == [
        PingResponse(12500)]
    # Set Buffer Length needs nothing.
    assert feed(conn, client.writer.write(2, 4, 0, 0, bytes(UserControl.of(3, 1, 3000)))) == []


def test_acknowledgement_window() -> None:
    """After the peer's Window Ack Size, an Acknowledgement (bytes received so
    far, counted after the handshake) goes out each time a window is full."""
    conn, client = _connected()
    conn.data_to_send()
    pieces = [client.writer.write(2, 5, 0, 0, bytes(WindowAckSize(1000)))]
    pieces += [client.command("getStreamLength", None, "x" * 400) for _ in range(6)]
    received, last, acks = conn.bytes_received, 0, 0
    for piece in pieces:
        feed(conn, piece)
        received += len(piece)
        sent = read_messages(conn.data_to_send(), 4096)
        if received - last >= 1000:
            assert [(m.type_id, m.body) for m in sent] == [(3, received.to_bytes(4, "big"))]
            last = received
            acks += 1
        else:
            assert sent == []
    assert conn.bytes_received == received and acks >= 2
    # The peer acknowledging us is recorded.
    feed(conn, client.writer.write(2, 3, 0, 0, (5000).to_bytes(4, "big")))
    assert conn.peer_acked == 5000


def test_set_peer_bandwidth_answered_with_window() -> None:
    conn, client = _connected()
    conn.data_to_send()
    feed(conn, client.writer.write(2, 6, 0, 0, bytes.fromhex("000f4240 02")))
    (msg,) = read_messages(conn.data_to_send(), 4096)
    assert (msg.type_id, msg.body) == (5, bytes.fromhex("000f4240"))
    feed(conn, client.writer.write(2, 6, 0, 0, bytes.fromhex("000f4240 02")))
    assert conn.data_to_send() == b""  # same size: nothing more


def test_setup_deadline() -> None:
    conn = RtmpServerConnection(100.0, setup_timeout=5.0)
    assert conn.get_timer() == 105.0
    conn.receive_data(b"\x03" + bytes(100), 104.0)
    conn.handle_timer(104.9)
    assert conn.next_event() is NEED_DATA and not conn.closed
    conn.handle_timer(105.0)
    assert conn.next_event() == TimedOut("no progress in state wait_c0c1")
    assert conn.closed and conn.get_timer() is None
    assert conn.next_event() is NEED_DATA


def test_deadlines_through_a_publish() -> None:
    conn = RtmpServerConnection(0.0, setup_timeout=5.0, idle_timeout=3.0, random_bytes=Counter(b"s"))
    client = Client()
    handshake(conn, client)
    feed(conn, client.connect(), now=1.0)
    assert conn.get_timer() is None  # our decision pending: no deadline
    conn.handle_timer(50.0)
    assert conn.next_event() is PAUSED
    conn.accept_connect()
    assert conn.get_timer() == 55.0  # setup_timeout after the last time we were given
    feed(conn, client.publish_setup(), now=52.0)
    assert conn.get_timer() is None
    conn.accept_publish()
    assert conn.get_timer() == 55.0  # idle_timeout
    feed(conn, client.media(9, 0, b"\x17\x00\x00\x00\x00" + AVCC), now=54.0)
    assert conn.get_timer() == 57.0
    conn.handle_timer(57.0)
    assert drain(conn) == [TimedOut("no media")]


def test_receive_buffer_is_bounded_while_paused() -> None:
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
    client = Client()
    handshake(conn, client)
    feed(conn, client.connect())
    assert conn.next_event() is PAUSED
    with pytest.raises(RtmpProtocolError, match="receive buffer"):
        for _ in range(200):
            conn.receive_data(bytes(65536), 0.0)
    conn = RtmpServerConnection(0.0)
    with pytest.raises(RtmpProtocolError, match="handshake"):
        conn.receive_data(bytes(MAX_RECEIVE_BUFFER + 1), 0.0)


def test_aggregate_message_is_split() -> None:
    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.accept_publish()
    flv = FlvMuxer("h264")
    tags = (flv.video_sequence_header(AVCC, 1000) + flv.video_tag(AU, 1040, 1080, True)
            + flv.audio_tag(b"\x21\x00", 1050))
    events = feed(conn, client.writer.write(6, MSG_AGGREGATE, 1, 5000, tags))
    assert [(e.codec, e.dts, e.pts, e.config) for e in events if isinstance(e, MediaUnit)] == [
        ("h264", 5000, 5000, True), ("h264", 5040, 5080, False), ("aac", 5050, 5050, False)]
    with pytest.raises(RtmpProtocolError, match="aggregate"):
        feed(conn, client.writer.write(6, MSG_AGGREGATE, 1, 0, tags[:-5]))


def test_aggregate_data_parts_are_held_to_the_data_message_cap() -> None:
    """An aggregate may be a media message's size (8 MiB), and its data parts
    were decoded whatever their size: one 8 MiB part of empty AMF0 objects
    took the loop ~2.9 s and ~170 MiB. Together they are held to one data
    message's cap now, checked before any of them is decoded."""
    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.accept_publish()
    flv = FlvMuxer("h264")

    def data_tag(body: bytes) -> bytes:
        return (bytes((18,)) + len(body).to_bytes(3, "big") + bytes(7) + body
                + (len(body) + 11).to_bytes(4, "big"))

    meta = amf0.encode("onMetaData", amf0.EcmaArray(width=320.0))
    small = flv.video_sequence_header(AVCC, 0) + data_tag(meta)
    events = feed(conn, client.writer.write(6, MSG_AGGREGATE, 1, 0, small))
    assert Metadata({"width": 320.0}) in events

    def objects(size: int) -> bytes:
        count = (size - 18) // 4
        return amf0.encode("onMetaData")[:13] + b"\x0a" + count.to_bytes(4, "big") + b"\x03\x00\x00\x09" * count

    one = data_tag(objects(MAX_COMMAND_LEN + 64))
    with pytest.raises(RtmpProtocolError, match="aggregate data parts"):
        feed(conn, client.writer.write(6, MSG_AGGREGATE, 1, 40, one))
    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.accept_publish()
    two = data_tag(objects(MAX_COMMAND_LEN // 2 + 64)) * 2
    with pytest.raises(RtmpProtocolError, match="aggregate data parts"):
        feed(conn, client.writer.write(6, MSG_AGGREGATE, 1, 40, two))


def test_messages_a_second_are_bounded() -> None:
    """A message can be 2 bytes (a fmt 3 header repeating the last one, a
    1-byte body), each costing the loop microseconds: 256 KiB of them took it
    0.55 s. MESSAGE_BURST at once, then MESSAGE_RATE a second."""
    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.accept_publish()
    first = chunk_header(0, 4, 0, 1, 8, 1) + b"\x20"  # a 1-byte MP3 message: ignored
    tiny = chunk_header(3, 4) + b"\x20"
    budget = MESSAGE_BURST - conn.messages
    feed(conn, first + tiny * (budget - 1), now=0.0)
    feed(conn, tiny * int(MESSAGE_RATE), now=1.0)  # a second's worth, a second later
    with pytest.raises(RtmpProtocolError, match="messages a second"):
        feed(conn, tiny * 2, now=1.0)
    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.accept_publish()
    with pytest.raises(RtmpProtocolError, match="messages a second"):
        feed(conn, first + tiny * 131072, now=0.0)
    assert conn.messages <= MESSAGE_BURST + 1


def test_amf_bytes_a_second_are_bounded() -> None:
    """Decoding AMF0 costs ~0.4 us a byte at worst: a 64 KiB command of
    one-byte nulls took 30 ms, and with only the message bound one
    connection sending them back to back held a core. AMF_BURST bytes of
    commands and data at once, then AMF_RATE a second; captions at a
    frame's rate stay well under it."""
    def nulls(n: int) -> bytes:  # the dearest body to decode: n one-byte values
        head = amf0.encode("_checkbw", 0.0)
        return client.writer.write(3, 20, 0, 0, head + b"\x05" * (n - len(head)))

    conn, client = _connected()
    spent = AMF_BURST - conn._amf.tokens  # the connect command
    big = nulls(MAX_COMMAND_LEN)
    feed(conn, big, now=0.0)
    with pytest.raises(RtmpProtocolError, match="bytes of commands and data a second"):
        feed(conn, big, now=0.0)  # the burst less the connect: not room for a second one
    assert spent > 0
    conn, client = _connected()
    feed(conn, nulls(MAX_COMMAND_LEN - 1024), now=0.0)
    feed(conn, nulls(MAX_COMMAND_LEN - 1024), now=0.0)
    wait = MAX_COMMAND_LEN / AMF_RATE
    feed(conn, nulls(MAX_COMMAND_LEN), now=wait + 0.1)  # refilled: one more
    with pytest.raises(RtmpProtocolError, match="bytes of commands and data a second"):
        feed(conn, nulls(MAX_COMMAND_LEN), now=wait + 0.2)

    # A publisher's captions: a 300-byte onTextData at 30 frames a second, a minute.
    conn, client = _connected()
    feed(conn, client.publish_setup())
    conn.accept_publish()
    text = "x" * (300 - 30)
    for frame in range(30 * 60):
        feed(conn, client.data("onTextData", {"text": text}), now=frame / 30)
    assert conn.state is RtmpState.PUBLISHING


def test_a_player_is_held_to_a_players_bounds() -> None:
    """Once a connection asked to play, its peer sends commands and control
    messages, never media; with a publisher's bounds it could still make us
    hold ~25 MiB nobody reads (an 8 MiB message, 16 MiB of unfinished ones,
    9 MiB unparsed). Now: a command's size, 256 KiB unfinished, 1 MiB
    unparsed; the same connection before `play` keeps a publisher's."""
    from hub.media.rtmp.constants import MAX_MESSAGE_LEN, PLAYER_MAX_BUFFER

    def playing() -> tuple[RtmpServerConnection, Client]:
        conn, client = _connected("live")
        feed(conn, client.play_setup("cam1"))
        conn.data_to_send()
        conn.accept_play()
        return conn, client

    # Before play: a big media message is taken (and ignored), as a publisher's would be.
    conn, client = _connected("live")
    assert feed(conn, client.media(9, 0, bytes(MAX_COMMAND_LEN + 1))) == []
    assert conn.ignored == 1
    # Playing: a media message over a command's size ends the connection at its header.
    conn, client = playing()
    with pytest.raises(RtmpProtocolError, match="message of type 9"):
        feed(conn, client.media(9, 0, bytes(MAX_COMMAND_LEN + 1))[:64])
    # Unfinished messages: 256 KiB declared at most (4 of 64 KiB, then the 5th).
    conn, client = playing()
    with pytest.raises(RtmpProtocolError, match="unfinished"):
        for csid in range(10, 15):
            conn.receive_data(chunk_header(0, csid, 0, MAX_COMMAND_LEN, 9, 1) + bytes(128), 0.0)
            drain(conn)
    # Unparsed bytes: 1 MiB.
    conn, client = playing()
    with pytest.raises(RtmpProtocolError, match="receive buffer"):
        conn.receive_data(bytes(PLAYER_MAX_BUFFER + 1), 0.0)
    assert PLAYER_MAX_BUFFER < MAX_MESSAGE_LEN
