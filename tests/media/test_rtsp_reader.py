"""RtspReader: whole, byte by byte, with trailing bytes, caps, fuzz."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.rtsp import NEED_DATA, InterleavedFrame, RtspReader, RtspRequest, RtspResponse
from hub.media.rtsp.reader import parse_message

DATA = Path(__file__).resolve().parent.parent / "data"

Event = RtspRequest | RtspResponse | InterleavedFrame


def drain(reader: RtspReader) -> list[Event]:
    return list(reader.events())


def read_all(data: bytes, chunk: int | None = None) -> tuple[list[Event], int]:
    """Feed `data` whole (chunk None) or in `chunk`-sized pieces."""
    reader = RtspReader()
    events: list[Event] = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        reader.feed(data[i:i + step])
        events += drain(reader)
    return events, reader.buffered


def all_ways(data: bytes) -> list[list[Event]]:
    """Whole, byte by byte, 7-byte pieces: all must agree and consume all."""
    results = []
    for chunk in (None, 1, 7):
        events, left = read_all(data, chunk)
        assert left == 0
        results.append(events)
    assert results[0] == results[1] == results[2]
    return results


OPTIONS = (b"OPTIONS rtsp://127.0.0.1:18554/live/test RTSP/1.0\r\n"
           b"CSeq: 1\r\n"
           b"User-Agent: Lavf59.27.100\r\n"
           b"\r\n")


def test_options_request_fields() -> None:
    [events] = all_ways(OPTIONS)[:1]
    [req] = events
    assert isinstance(req, RtspRequest)
    assert req.method == "OPTIONS"
    assert req.uri == "rtsp://127.0.0.1:18554/live/test"
    assert req.version == "RTSP/1.0"
    assert req.headers.items() == [("CSeq", "1"), ("User-Agent", "Lavf59.27.100")]
    assert req.cseq == 1
    assert req.body == b""
    assert bytes(req) == OPTIONS


def test_ffmpeg_publish_capture() -> None:
    """A real FFmpeg 5 (Lavf59) `-f rtsp -rtsp_transport tcp` session:
    OPTIONS, ANNOUNCE with SDP, two SETUPs, RECORD, then 40 `$` frames."""
    data = (DATA / "rtsp_ffmpeg_publish.bin").read_bytes()
    for events in all_ways(data):
        methods = [e.method for e in events if isinstance(e, RtspRequest)]
        assert methods == ["OPTIONS", "ANNOUNCE", "SETUP", "SETUP", "RECORD"]
        frames = [e for e in events if isinstance(e, InterleavedFrame)]
        assert len(frames) == 40
        assert {f.channel for f in frames} <= {0, 1, 2, 3}
        # Reassembling every event gives back the capture byte for byte.
        assert b"".join(bytes(e) for e in events) == data
    announce = events[1]
    assert isinstance(announce, RtspRequest)
    assert announce.headers.get("content-type") == "application/sdp"
    assert announce.headers["Content-Length"] == "495"
    assert announce.body == (DATA / "sdp_ffmpeg_h264_aac.txt").read_bytes()
    setup = events[2]
    assert isinstance(setup, RtspRequest)
    assert setup.uri == "rtsp://127.0.0.1:18554/live/test/streamid=0"
    assert setup.headers["Transport"] == "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"
    # FFmpeg opens with RTCP sender reports (audio on 3, video on 1), then RTP.
    first = frames[0]
    assert (first.channel, len(first.payload), first.payload[:2]) == (3, 28, b"\x80\xc8")
    assert (frames[1].channel, frames[1].payload[:2]) == (1, b"\x80\xc8")
    assert (frames[2].channel, frames[2].payload[:2]) == (0, b"\x80\x60")  # RTP, PT 96
    offset = data.index(b"\r\n\r\n$") + 4
    assert data[offset:offset + 4] == bytes([0x24, first.channel]) + struct.pack(">H", len(first.payload))
    assert first.payload == data[offset + 4:offset + 4 + len(first.payload)]


def test_camera_describe_response() -> None:
    data = (DATA / "rtsp_camera_describe.bin").read_bytes()
    for events in all_ways(data):
        [resp] = events
        assert isinstance(resp, RtspResponse)
        assert (resp.version, resp.status, resp.reason) == ("RTSP/1.0", 200, "OK")
        assert resp.cseq == 3
        assert resp.headers["Content-Base"] == "rtsp://192.168.1.64:554/Streaming/Channels/101/"
        assert resp.body == (DATA / "sdp_camera_h265.txt").read_bytes()
        assert bytes(resp) == data


def test_frame_right_after_request_and_trailing_partial() -> None:
    frame = b"$\x00\x00\x05hello"
    data = OPTIONS + frame + b"$\x01\x00\x10abc"  # trailing partial frame
    for chunk in (None, 1, 3):
        reader = RtspReader()
        events: list[Event] = []
        step = chunk or len(data)
        for i in range(0, len(data), step):
            reader.feed(data[i:i + step])
            events += drain(reader)
        assert [type(e) for e in events] == [RtspRequest, InterleavedFrame]
        assert events[1] == InterleavedFrame(0, b"hello")
        assert reader.buffered == 7
        assert reader.next_event() is NEED_DATA


def test_request_split_inside_header_block() -> None:
    reader = RtspReader()
    cut = OPTIONS.index(b"User-") + 3
    reader.feed(OPTIONS[:cut])
    assert reader.next_event() is NEED_DATA
    reader.feed(OPTIONS[cut:-1])  # all but the last LF
    assert reader.next_event() is NEED_DATA
    reader.feed(OPTIONS[-1:] + OPTIONS[:10])
    req = reader.next_event()
    assert isinstance(req, RtspRequest) and req.cseq == 1
    assert reader.next_event() is NEED_DATA
    assert reader.buffered == 10


def test_body_split_and_pipelined_requests() -> None:
    body = b"v=0\r\ns=x\r\n"
    msg = (b"ANNOUNCE rtsp://h/s RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 10\r\n\r\n" + body)
    events = all_ways(msg + OPTIONS + msg)[0]
    assert [e.method for e in events if isinstance(e, RtspRequest)] == ["ANNOUNCE", "OPTIONS", "ANNOUNCE"]
    assert all(e.body == body for e in events if isinstance(e, RtspRequest) and e.method == "ANNOUNCE")


def test_bare_lf_and_stray_crlf_and_folding() -> None:
    data = b"\r\n\r\nGET_PARAMETER rtsp://h/s RTSP/1.0\nCSeq: 9\nX-Long: a\n  b\n\n"
    [events] = all_ways(data)[:1]
    [req] = events
    assert isinstance(req, RtspRequest)
    assert req.method == "GET_PARAMETER"
    assert req.headers.items() == [("CSeq", "9"), ("X-Long", "a b")]
    # Output always uses CRLF.
    assert bytes(req) == b"GET_PARAMETER rtsp://h/s RTSP/1.0\r\nCSeq: 9\r\nX-Long: a b\r\n\r\n"


def test_response_without_reason() -> None:
    resp = parse_message(b"RTSP/1.0 454\r\nCSeq: 4\r\n\r\n")
    assert isinstance(resp, RtspResponse)
    assert (resp.status, resp.reason) == (454, "Session Not Found")


def test_empty_frame_and_max_frame() -> None:
    big = bytes(range(256)) * 255 + bytes(range(255))  # 65535 bytes
    data = b"$\x02\x00\x00" + b"$\x03\xff\xff" + big
    events, left = read_all(data)
    assert events == [InterleavedFrame(2, b""), InterleavedFrame(3, big)]
    assert left == 0


@pytest.mark.parametrize("data", [
    b"OPTIONS rtsp://h/" + b"a" * 4096 + b" RTSP/1.0\r\n\r\n",  # request line over 4 KiB
    b"OPTIONS rtsp://h/" + b"a" * 5000,  # ... detected before the line ends
    b"OPTIONS * RTSP/1.0\r\n" + b"X-A: " + b"b" * 17000,  # header block over 16 KiB
    b"OPTIONS * RTSP/1.0\r\n" + b"X-A: b\r\n" * 2100 + b"\r\n",  # ... complete but too long
    b"OPTIONS * RTSP/1.0\r\n" + b"X-A: b\r\n" * 65 + b"\r\n",  # 65 headers
    b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 65537\r\n\r\n",  # body over 64 KiB
    b"ANNOUNCE * RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
    b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"ANNOUNCE * RTSP/1.0\r\nContent-Length: \xd9\xa1\r\n\r\n",  # a non-ASCII digit
    b"OPTIONS * HTTP/1.1\r\n\r\n",
    b"OPTIONS  * RTSP/1.0\r\n\r\n",
    b"options * RTSP/1.0\r\n\r\n",
    b"RTSP/1.0 20 OK\r\n\r\n",
    b"RTSP/x 200 OK\r\n\r\n",
    b"OPTIONS * RTSP/1.0\r\nno colon here\r\n\r\n",
    b"OPTIONS * RTSP/1.0\r\n : empty name\r\n\r\n",
    b"OPTIONS * RTSP/1.0\r\nBad Name: x\r\n\r\n",
    b"\x00\x01garbage",
    b"\x16\x03\x01",  # a TLS ClientHello on the RTSP port
])
def test_caps_and_garbage_raise_protocol_error(data: bytes) -> None:
    for chunk in (None, 1):
        reader = RtspReader()
        step = chunk or len(data)
        with pytest.raises(ProtocolError):
            for i in range(0, len(data), step):
                reader.feed(data[i:i + step])
                drain(reader)
        # The reader stays failed: the connection is out of sync.
        with pytest.raises(ProtocolError):
            reader.next_event()


def test_limits_exactly_at_cap_are_accepted() -> None:
    line = b"OPTIONS rtsp://h/" + b"a" * (4096 - len(b"OPTIONS rtsp://h/ RTSP/1.0")) + b" RTSP/1.0"
    assert len(line) == 4096
    data = line + b"\r\n" + b"X-A: b\r\n" * 63 + b"CSeq: 1\r\n\r\n"
    [req] = read_all(data)[0]
    assert isinstance(req, RtspRequest) and len(req.headers) == 64
    body = b"x" * 65536
    data = b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 65536\r\n\r\n" + body
    [req] = read_all(data)[0]
    assert isinstance(req, RtspRequest) and req.body == body


def test_parse_message_rejects_partial_trailing_and_frames() -> None:
    with pytest.raises(ProtocolError):
        parse_message(OPTIONS[:-2])
    with pytest.raises(ProtocolError):
        parse_message(OPTIONS + b"$")
    with pytest.raises(ProtocolError):
        parse_message(b"$\x00\x00\x00")
    with pytest.raises(ProtocolError):
        RtspResponse.parse(OPTIONS)
    with pytest.raises(ProtocolError):
        RtspRequest.parse(b"RTSP/1.0 200 OK\r\n\r\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_fuzz_any_bytes_events_or_protocol_error(chunks: list[bytes]) -> None:
    reader = RtspReader()
    try:
        for chunk in chunks:
            reader.feed(chunk)
            for event in reader.events():
                assert isinstance(event, (RtspRequest, RtspResponse, InterleavedFrame))
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    OPTIONS, b"$\x00\x00\x03abc", b"\r\n", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 2\r\n\r\nok",
]), max_size=6), st.integers(1, 50))
def test_fuzz_valid_streams_split_anywhere(parts: list[bytes], step: int) -> None:
    data = b"".join(parts)
    whole, _ = read_all(data)
    pieces, left = read_all(data, step)
    assert pieces == whole and left == 0
    assert len(whole) == sum(1 for p in parts if p != b"\r\n")


def test_interleaved_throughput() -> None:
    """Publisher ingest: 1200-byte RTP frames fed in 64 KiB reads."""
    stream = b"".join(struct.pack(">BBH", 0x24, i & 3, 1200) + bytes(1200) for i in range(2000))
    reads = [stream[i:i + 65536] for i in range(0, len(stream), 65536)]
    count = 0
    start = time.perf_counter()
    for _ in range(10):
        reader = RtspReader()
        for data in reads:
            reader.feed(data)
            for _event in reader.events():
                count += 1
    elapsed = time.perf_counter() - start
    assert count == 20000
    print(f"\nRtspReader: {count / elapsed:,.0f} interleaved frames/s (1200 B)")


def test_take_buffered_hands_over_what_follows_an_event() -> None:
    from hub.media.rtsp import RtspReader, RtspRequest

    announce = b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nv=0"
    rest = b"SETUP rtsp://h/a/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n\r\n$\x00\x00\x02ab"
    r = RtspReader()
    r.feed(b"OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\n\r\n" + announce + rest)
    assert isinstance(r.next_event(), RtspRequest)
    ev = r.next_event()
    assert isinstance(ev, RtspRequest) and ev.method == "ANNOUNCE" and bytes(ev) == announce
    assert r.take_buffered() == rest
    assert r.buffered == 0


def test_last_raw_is_the_message_as_received() -> None:
    odd = b"\r\nANNOUNCE rtsp://h/a RTSP/1.0\nCSeq:  2\nContent-Length: 3\n\nv=0"
    for chunk in (None, 1):
        reader = RtspReader()
        step = chunk or len(odd)
        events = []
        for i in range(0, len(odd), step):
            reader.feed(odd[i:i + step])
            events += drain(reader)
        [msg] = events
        assert isinstance(msg, RtspRequest) and msg.body == b"v=0"
        assert reader.last_raw == odd[2:]  # the stray CRLF before it is not part of it
        assert bytes(msg) != reader.last_raw  # re-encoding would not be exact


def test_frames_only_leaves_the_next_message_unread() -> None:
    reader = RtspReader()
    reader.feed(b"$\x00\x00\x01a\r\n" + OPTIONS + b"$\x01\x00\x01b")
    assert reader.next_event(frames_only=True) == InterleavedFrame(0, b"a")
    assert reader.next_event(frames_only=True) is NEED_DATA
    assert reader.buffered == len(OPTIONS) + 5 and reader.in_message
    assert isinstance(reader.next_event(), RtspRequest)
    assert not reader.in_message
    assert reader.next_event(frames_only=True) == InterleavedFrame(1, b"b")


def test_in_message_tells_a_partial_request_from_a_partial_frame() -> None:
    reader = RtspReader()
    assert not reader.in_message
    reader.feed(b"\r\n")
    assert not reader.in_message
    reader.feed(b"$\x00\x00\x09abc")
    assert not reader.in_message
    reader = RtspReader()
    reader.feed(b"OPT")
    assert reader.in_message
    reader = RtspReader()
    reader.feed(b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 5\r\n\r\nab")
    assert reader.next_event() is NEED_DATA and reader.in_message


def test_take_buffered_mid_body_returns_the_head_too() -> None:
    head = b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 5\r\n\r\n"
    reader = RtspReader()
    reader.feed(head + b"ab")
    assert reader.next_event() is NEED_DATA
    assert reader.buffered == len(head) + 2
    assert reader.take_buffered() == head + b"ab"
    assert reader.buffered == 0 and not reader.in_message
    reader.feed(OPTIONS)
    assert isinstance(reader.next_event(), RtspRequest)
