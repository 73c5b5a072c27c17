"""Chunk stream reader and writer, byte-exact: every basic-header form, every
fmt, extended timestamps, chunk-size changes, abort, and the limits."""

from __future__ import annotations

import pytest

from hub.media.rtmp.chunk import ChunkReader, ChunkWriter, basic_header, chunk_header, chunk_message
from hub.media.rtmp.constants import (
    MAX_CHUNK_SIZE, MAX_CHUNK_STREAMS, MAX_COMMAND_LEN, MAX_MESSAGE_LEN, MAX_PENDING_BYTES,
    RtmpProtocolError,
)
from hub.media.rtmp.message import RtmpMessage, SetChunkSize
from rtmp_testkit import read_messages


def _read(data: bytes, chunk_size: int = 128, step: int | None = None) -> list[RtmpMessage]:
    """Read all messages, feeding whole or ``step`` bytes at a time."""
    reader = ChunkReader(chunk_size)
    out = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        reader.feed(piece)
        while (m := reader.next_message()) is not None:
            out.append(m)
    assert reader.buffered == 0
    return out


@pytest.mark.parametrize("csid, wire", [
    (2, b"\x02"), (63, b"\x3f"), (64, b"\x00\x00"), (319, b"\x00\xff"),
    (320, b"\x01\x00\x01"), (65599, b"\x01\xff\xff"), (1000, b"\x01\xa8\x03"),
])
def test_basic_header_forms(csid: int, wire: bytes) -> None:
    assert basic_header(0, csid) == wire
    assert basic_header(3, csid)[0] == wire[0] | 0xC0
    msg = _read(wire + b"\x00\x00\x05\x00\x00\x01\x14\x00\x00\x00\x00" + b"A")[0]
    assert (msg.csid, msg.timestamp, msg.type_id, msg.stream_id, msg.body) == (csid, 5, 20, 0, b"A")


@pytest.mark.parametrize("csid", [0, 1, 65600])
def test_basic_header_range(csid: int) -> None:
    with pytest.raises(ValueError):
        basic_header(0, csid)


def test_chunk_headers_of_every_fmt() -> None:
    assert chunk_header(0, 3, 0x010203, 0x000405, 20, 1) == bytes.fromhex("03 010203 000405 14 01000000")
    assert chunk_header(1, 4, 40, 300, 8) == bytes.fromhex("44 000028 00012c 08")
    assert chunk_header(2, 4, 23) == bytes.fromhex("84 000017")
    assert chunk_header(3, 4) == b"\xc4"
    # Extended: the field reads FFFFFF and the 32-bit value follows.
    assert chunk_header(0, 6, 0x01000000, 2, 9, 1) == bytes.fromhex("06 ffffff 000002 09 01000000 01000000")
    assert chunk_header(1, 6, 0xFFFFFF, 2, 9) == bytes.fromhex("46 ffffff 000002 09 00ffffff")
    assert chunk_header(2, 6, 0x12345678) == bytes.fromhex("86 ffffff 12345678")
    assert chunk_header(3, 6, 0x12345678) == bytes.fromhex("c6 12345678")


def test_spec_sample_audio_fmt_0_2_3() -> None:
    """RTMP spec 5.3.2.1, example 1: audio messages of one stream, 32 bytes each,
    20 ms apart: a fmt 0 chunk, a fmt 2 (delta only), then fmt 3 ones."""
    body = bytes(range(32))
    wire = (bytes.fromhex("03 0003e8 000020 08 39300000") + body +   # ts 1000, stream 12345
            bytes.fromhex("83 000014") + body +                     # delta 20
            b"\xc3" + body + b"\xc3" + body)                        # delta 20 again
    for step in (None, 1, 7):
        msgs = _read(wire, step=step)
        assert [(m.csid, m.type_id, m.stream_id, m.timestamp) for m in msgs] == [
            (3, 8, 12345, 1000), (3, 8, 12345, 1020), (3, 8, 12345, 1040), (3, 8, 12345, 1060)]
        assert all(m.body == body for m in msgs)
    writer = ChunkWriter(compress=True)
    assert b"".join(writer.write(3, 8, 12345, 1000 + 20 * i, body) for i in range(4)) == wire


def test_spec_sample_message_split_in_chunks() -> None:
    """RTMP spec 5.3.2.2: a 307-byte video message at chunk size 128 is a fmt 0
    chunk and two fmt 3 continuation chunks."""
    body = bytes(i & 0xFF for i in range(307))
    wire = (bytes.fromhex("04 0003e8 000133 09 01000000") + body[:128] + b"\xc4" + body[128:256]
            + b"\xc4" + body[256:])
    assert chunk_message(4, 9, 1, 1000, body, 128) == wire
    assert ChunkWriter().write(4, 9, 1, 1000, body) == wire
    for step in (None, 1, 100, 129):
        msgs = _read(wire, step=step)
        assert len(msgs) == 1 and msgs[0].body == body and msgs[0].timestamp == 1000


def test_fmt_1_keeps_stream_id_and_fmt_3_after_fmt_0_repeats_its_timestamp() -> None:
    wire = (bytes.fromhex("05 000064 000001 12 07000000") + b"a"   # fmt 0, ts 100, stream 7
            + bytes.fromhex("45 00000a 000002 14") + b"bc"          # fmt 1: +10, new len/type
            + bytes.fromhex("c5") + b"de")                          # fmt 3: +10 again
    msgs = _read(wire)
    assert [(m.timestamp, m.type_id, m.stream_id, bytes(m.body)) for m in msgs] == [
        (100, 18, 7, b"a"), (110, 20, 7, b"bc"), (120, 20, 7, b"de")]
    # A fmt 3 that starts a message right after a fmt 0 adds the fmt 0 timestamp
    # (FFmpeg's and SRS's reading of the spec).
    msgs = _read(bytes.fromhex("05 000064 000001 12 07000000") + b"a" + b"\xc5" + b"b")
    assert [m.timestamp for m in msgs] == [100, 200]


def test_extended_timestamp_on_continuation_chunks() -> None:
    ts = 0x01020304
    body = bytes(300)
    wire = chunk_message(6, 9, 1, ts, body, 128)
    ext = (ts).to_bytes(4, "big")
    assert wire == (bytes.fromhex("06 ffffff 00012c 09 01000000") + ext + body[:128]
                    + b"\xc6" + ext + body[128:256] + b"\xc6" + ext + body[256:])
    for step in (None, 1, 3):
        (msg,) = _read(wire, step=step)
        assert msg.timestamp == ts and msg.body == body


def test_extended_timestamp_not_repeated_on_continuation() -> None:
    """Some senders leave the repeat out: the reader then takes those bytes as payload."""
    ts = 0x01020304
    body = b"\x11" * 200
    wire = (bytes.fromhex("06 ffffff 0000c8 09 01000000") + ts.to_bytes(4, "big") + body[:128]
            + b"\xc6" + body[128:])
    (msg,) = _read(wire)
    assert msg.timestamp == ts and msg.body == body


def test_extended_delta_and_fmt_3_new_message() -> None:
    writer = ChunkWriter(compress=True)
    stream = b"".join((writer.write(4, 8, 1, 0, b"x"),
                       writer.write(4, 8, 1, 0x1000000, b"y"),     # fmt 2, extended delta
                       writer.write(4, 8, 1, 0x2000000, b"z")))    # fmt 3, extended repeated
    assert stream == (bytes.fromhex("04 000000 000001 08 01000000") + b"x"
                      + bytes.fromhex("84 ffffff 01000000") + b"y"
                      + bytes.fromhex("c4 01000000") + b"z")
    assert [m.timestamp for m in _read(stream)] == [0, 0x1000000, 0x2000000]


def test_timestamp_wraps_modulo_2_32() -> None:
    writer = ChunkWriter(compress=True)
    stream = writer.write(4, 8, 1, 0xFFFFFFF0, b"a") + writer.write(4, 8, 1, 0xFFFFFFF0, b"b", fmt=2)
    stream += bytes.fromhex("84 000020") + b"c"
    assert [m.timestamp for m in _read(stream)] == [0xFFFFFFF0, 0xFFFFFFF0, 0x10]


def test_chunk_size_change_mid_stream() -> None:
    writer = ChunkWriter(compress=True)
    big = bytes(range(256)) * 20  # 5120 bytes
    stream = (writer.write(3, 20, 0, 0, big[:300])
              + writer.set_chunk_size(4096)
              + writer.write(6, 9, 1, 40, big)
              + writer.set_chunk_size(128)
              + writer.write(6, 9, 1, 80, big[:300]))
    # The second Set Chunk Size repeats the first's header: one fmt 3 byte.
    assert bytes.fromhex("c2 00000080") in stream
    for step in (None, 1, 4095):
        reader = ChunkReader()
        msgs = []
        for i in range(0, len(stream), step or len(stream)):
            reader.feed(stream[i:i + (step or len(stream))])
            while (m := reader.next_message()) is not None:
                msgs.append(m)
        assert [(m.type_id, len(m.body)) for m in msgs] == [(20, 300), (1, 4), (9, 5120), (1, 4), (9, 300)]
        assert msgs[2].body == big and msgs[4].body == big[:300]
        assert reader.chunk_size == 128
    # 5120 bytes at 4096: two chunks; then a fmt 1 header (+40 ms, new length)
    # and 128-byte fmt 3 continuation chunks.
    assert bytes.fromhex("06 000028 001400 09 01000000") + big[:4096] + b"\xc6" + big[4096:] in stream
    assert stream.endswith(bytes.fromhex("46 000028 00012c 09") + big[:128] + b"\xc6" + big[128:256]
                           + b"\xc6" + big[256:300])


def test_chunk_size_is_at_least_128() -> None:
    """Every chunk costs a header's parsing: at 1 byte a chunk a 1 MiB frame
    took the loop 1.6 s (783 ns a byte; 2 ns at 4096). No encoder sets less
    than the default, 128, and a peer that does is refused at once."""
    with pytest.raises(RtmpProtocolError, match="under our limit"):
        SetChunkSize.parse(bytes.fromhex("0000007f"))
    writer = ChunkWriter()
    frame = writer.set_chunk_size(1) + writer.write(6, 9, 1, 0, bytes(1 << 20))
    reader = ChunkReader()
    reader.feed(frame)
    with pytest.raises(RtmpProtocolError, match="under our limit"):
        while reader.next_message() is not None:
            pass
    assert reader.chunk_size == 128


def test_abort_drops_the_partial_message() -> None:
    body = bytes(300)
    partial = chunk_message(6, 9, 1, 0, body, 128)[:12 + 128]  # first chunk only
    abort = bytes.fromhex("02 000000 000004 02 00000000 00000006")
    fresh = chunk_message(6, 9, 1, 40, b"new", 128)
    reader = ChunkReader()
    reader.feed(partial)
    assert reader.next_message() is None and reader.pending_bytes == 300
    reader.feed(abort + fresh)
    msg = reader.next_message()
    assert msg is not None and msg.type_id == 2 and reader.pending_bytes == 0
    msg = reader.next_message()
    assert msg is not None and (msg.timestamp, msg.body) == (40, b"new")


def test_trailing_bytes_wait_for_the_rest() -> None:
    wire = chunk_message(3, 20, 0, 0, b"hello", 128)
    reader = ChunkReader()
    reader.feed(wire + wire[:7])
    msg = reader.next_message()
    assert msg is not None and msg.body == b"hello"
    assert reader.next_message() is None and reader.buffered == 7
    reader.feed(wire[7:])
    msg = reader.next_message()
    assert msg is not None and msg.body == b"hello" and reader.buffered == 0


def test_zero_length_message() -> None:
    (msg,) = _read(bytes.fromhex("03 000000 000000 14 00000000"))
    assert msg.body == b""


def test_control_messages_apply_on_any_order_of_bytes() -> None:
    stream = bytes.fromhex("02 000000 000004 01 00000000 00001000")
    reader = ChunkReader()
    reader.feed(stream)
    assert reader.next_message() is not None and reader.chunk_size == 4096


@pytest.mark.parametrize("wire, why", [
    (bytes.fromhex("43 000000 000001 14") + b"a" + bytes.fromhex("84 000000"),
     "chunk stream 4 has fmt 2"),
    (bytes.fromhex("83 000000"), "first chunk"),
    (bytes.fromhex("c3"), "first chunk"),
    (bytes.fromhex("03 000000 000100 14 00000000") + bytes(128) + bytes.fromhex("43 000000 000001 14"),
     "middle of a message"),
    (bytes.fromhex("03 000000") + (MAX_COMMAND_LEN + 1).to_bytes(3, "big") + b"\x14" + bytes(4),
     "message of type 20"),
    (bytes.fromhex("06 000000") + (MAX_MESSAGE_LEN + 1).to_bytes(3, "big") + b"\x09" + bytes(4),
     "message of type 9"),
    (bytes.fromhex("02 000000 000041 01 00000000") + bytes(65), "message of type 1 is 65"),
    (bytes.fromhex("02 000000 000008 01 00000000") + bytes(8), "not 4"),
    (bytes.fromhex("02 000000 000004 01 00000000 00000000"), "invalid size"),
    (bytes.fromhex("02 000000 000004 01 00000000 80000000"), "invalid size"),
    (bytes.fromhex("02 000000 000004 01 00000000") + (MAX_CHUNK_SIZE + 1).to_bytes(4, "big"),
     "over our limit"),
    (bytes.fromhex("02 000000 000004 02 00000000 00000001"), "bad chunk stream id"),
    (bytes.fromhex("02 000000 000003 01 00000000 000010"), "not 4"),
])
def test_malformed(wire: bytes, why: str) -> None:
    with pytest.raises(RtmpProtocolError, match=why):
        _read(wire)


def test_fmt_1_may_open_a_chunk_stream() -> None:
    (msg,) = _read(bytes.fromhex("43 000007 000001 14") + b"a")
    assert (msg.timestamp, msg.stream_id, msg.body) == (7, 0, b"a")


def test_too_many_chunk_streams() -> None:
    stream = b"".join(chunk_message(3 + i, 20, 0, 0, b"x", 128) for i in range(MAX_CHUNK_STREAMS))
    assert len(_read(stream)) == MAX_CHUNK_STREAMS
    with pytest.raises(RtmpProtocolError, match="too many chunk streams"):
        _read(stream + chunk_message(3 + MAX_CHUNK_STREAMS, 20, 0, 0, b"x", 128))


def test_pending_bytes_are_capped() -> None:
    length = MAX_MESSAGE_LEN
    starts = b"".join(chunk_header(0, 4 + i, 0, length, 9, 1) + bytes(128) for i in range(3))
    reader = ChunkReader()
    reader.feed(starts)
    with pytest.raises(RtmpProtocolError, match="unfinished"):
        while reader.next_message() is not None:
            pass
    assert MAX_PENDING_BYTES // length == 2


def test_unfinished_messages_hold_what_was_sent_not_what_was_declared() -> None:
    """Two 4 MiB messages begun with 128 bytes each cost 256 bytes, not 8 MiB."""
    reader = ChunkReader()
    body = bytes(range(256)) * 2
    declared = MAX_MESSAGE_LEN // 2
    reader.feed(b"".join(chunk_header(0, 4 + i, 0, declared, 9, 1) + body[:128] for i in range(2)))
    assert reader.next_message() is None
    assert (reader.pending_bytes, reader.held_bytes) == (2 * declared, 256)
    reader.feed(chunk_header(3, 4) + body[128:256])
    assert reader.next_message() is None and reader.held_bytes == 384
    small = chunk_message(6, 9, 1, 0, body, 128)  # finished: nothing held for it
    reader.feed(small)
    msg = reader.next_message()
    assert msg is not None and msg.body == body and reader.held_bytes == 384


def test_writer_compression_choices() -> None:
    w = ChunkWriter(compress=True)
    assert w.write(4, 8, 1, 0, b"ab")[0] >> 6 == 0        # first on the chunk stream
    assert w.write(4, 8, 1, 20, b"ab")[0] >> 6 == 2       # same length and type: delta only
    assert w.write(4, 8, 1, 40, b"ab")[0] >> 6 == 3       # same delta too
    assert w.write(4, 8, 1, 60, b"abc")[0] >> 6 == 1      # new length
    assert w.write(4, 8, 2, 80, b"abc")[0] >> 6 == 0      # new stream id
    assert w.write(4, 8, 2, 10, b"abc")[0] >> 6 == 0      # going back in time
    assert ChunkWriter().write(4, 8, 1, 0, b"ab")[0] >> 6 == 0
    with pytest.raises(ValueError):
        ChunkWriter().write(9, 8, 1, 0, b"x", fmt=3)


def test_read_messages_helper_matches_reader() -> None:
    wire = chunk_message(3, 20, 0, 0, b"x" * 200, 128)
    assert read_messages(wire)[0].body == b"x" * 200
