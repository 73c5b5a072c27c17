"""Any input either parses or raises RtmpProtocolError (a ProtocolError) — nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.rtmp import NEED_DATA, PAUSED, RtmpProtocolError, RtmpServerConnection, RtmpState
from hub.media.rtmp.chunk import ChunkReader, ChunkWriter
from hub.media.rtmp.command import Command, DataMessage
from hub.media.rtmp.media import avc_parameter_sets, hevc_parameter_sets, parse_media
from hub.media.rtmp.message import parse_control
from rtmp_testkit import DATA, Client, Counter, handshake

FFMPEG = (DATA / "rtmp_ffmpeg_publish.bin").read_bytes()
HS = 3073
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def _run(conn: RtmpServerConnection, pieces: list[bytes]) -> None:
    """Feed and drain, accepting every decision, until the input ends or it errs."""
    try:
        for piece in pieces:
            conn.receive_data(piece, 0.0)
            for _ in range(100_000):
                ev = conn.next_event()
                if ev is NEED_DATA:
                    break
                if ev is PAUSED:
                    if conn.state is RtmpState.CONNECTING:
                        conn.accept_connect()
                    elif conn.state is RtmpState.PUBLISH_PENDING:
                        conn.accept_publish()
                    else:
                        conn.accept_play()
            conn.data_to_send()
        conn.handle_timer(1e9)
        conn.next_event()
    except RtmpProtocolError:
        pass


@SETTINGS
@given(st.binary(max_size=4000), st.lists(st.integers(0, 5000), max_size=6))
def test_chunk_reader(data: bytes, cuts: list[int]) -> None:
    reader = ChunkReader()
    try:
        for piece in _pieces(data, cuts):
            reader.feed(piece)
            while reader.next_message() is not None:
                pass
    except RtmpProtocolError:
        pass


@SETTINGS
@given(st.lists(st.tuples(st.integers(2, 400), st.integers(0, 30), st.integers(0, 3),
                          st.integers(0, 2 ** 32 - 1), st.binary(max_size=600),
                          st.sampled_from([None, 0, 1, 2, 3])), max_size=12),
       st.integers(1, 300))
def test_chunk_reader_on_well_formed_chunks_of_random_messages(
        messages: list[tuple[int, int, int, int, bytes, int | None]], chunk_size: int) -> None:
    writer = ChunkWriter(chunk_size, compress=True)
    stream = bytearray()
    for csid, type_id, stream_id, ts, body, fmt in messages:
        if type_id in (1, 2):
            continue
        try:
            stream += writer.write(csid, type_id, stream_id, ts, body, fmt)
        except ValueError:
            continue  # fmt 1-3 forced on a fresh chunk stream
    reader = ChunkReader(chunk_size)
    reader.feed(stream)
    try:
        while reader.next_message() is not None:
            pass
    except RtmpProtocolError:
        pass


@SETTINGS
@given(st.sampled_from([8, 9]), st.integers(0, 2 ** 32 - 1), st.binary(max_size=300))
def test_media_parser(type_id: int, ts: int, body: bytes) -> None:
    try:
        parse_media(type_id, ts, body)
    except RtmpProtocolError:
        pass


@SETTINGS
@given(st.sampled_from([0x17, 0x27, 0x1c, 0x90, 0x91, 0x93, 0xa3, 0xaf, 0x72]),
       st.binary(max_size=300))
def test_media_parser_on_plausible_heads(first: int, rest: bytes) -> None:
    body = bytes((first,)) + (b"hvc1" if first & 0x80 else b"") + rest
    try:
        parse_media(8 if first in (0xaf, 0x72) else 9, 0, body)
    except RtmpProtocolError:
        pass


@SETTINGS
@given(st.binary(max_size=400))
def test_amf_and_control_and_records(data: bytes) -> None:
    for parse in (Command.parse, DataMessage.parse, avc_parameter_sets, hevc_parameter_sets,
                  lambda d: Command.parse(d, amf3=True),
                  *(lambda d, t=t: parse_control(t, d) for t in range(1, 7))):
        try:
            parse(data)  # type: ignore[operator]
        except RtmpProtocolError:
            pass


@SETTINGS
@given(st.binary(max_size=5000), st.lists(st.integers(0, 6000), max_size=5))
def test_server_connection_from_the_first_byte(data: bytes, cuts: list[int]) -> None:
    _run(RtmpServerConnection(0.0), _pieces(b"\x03" + data, cuts))


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(0, 4000), max_size=5))
def test_server_connection_after_a_handshake(data: bytes, cuts: list[int]) -> None:
    conn = RtmpServerConnection(0.0, random_bytes=Counter(b"s"))
    handshake(conn, Client())
    _run(conn, _pieces(data, cuts))


@SETTINGS
@given(st.data())
def test_server_connection_on_a_mutated_ffmpeg_publish(data: st.DataObject) -> None:
    """Deep states: FFmpeg's real publish with bytes flipped, cut out or added."""
    body = bytearray(FFMPEG)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(HS, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            body[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del body[at:at + data.draw(st.integers(1, 64))]
        else:
            body[at:at] = data.draw(st.binary(min_size=1, max_size=32))
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=4))
    _run(RtmpServerConnection(0.0), _pieces(bytes(body), cuts))


def test_the_protocol_error_is_the_servers() -> None:
    assert issubclass(RtmpProtocolError, ProtocolError)
