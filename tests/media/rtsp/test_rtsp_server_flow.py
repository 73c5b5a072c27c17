"""RtspServerConnection: answers byte for byte, one request at a time with
pipelining (whole, byte by byte, trailing bytes), bounded buffering, the
request deadline (issue 12, defect 5) and the session timeout through
handle_timer(now), and take_buffered for the publish hand-off (defect 7)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from .rtsp_server_helpers import (DATE, SDP, SESSION, TCP_RECORD, accept, drain, drive, make, one_event,
                                 request_for, responses, wire)

from hub.errors import BadRequest, HubError, ProtocolError, Unauthorized
from hub.media.rtsp import NEED_DATA, InterleavedFrame
from hub.media.rtsp import events as ev
from hub.media.rtsp.events import split_uri
from hub.media.rtsp.server import MAX_PIPELINED
from hub.media.rtsp.state import RtspRole, RtspState

# -- answers, byte for byte -------------------------------------------------------


def test_options_answer_bytes_for_each_role() -> None:
    public = {
        RtspRole.ANY: b"OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, "
                      b"SET_PARAMETER",
        RtspRole.PLAYER: b"OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
        RtspRole.PUBLISHER: b"OPTIONS, ANNOUNCE, SETUP, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
    }
    for role, methods in public.items():
        conn = make(role=role)
        event = one_event(conn, wire("OPTIONS", "*", 0))
        assert isinstance(event, ev.Options) and (event.host, event.path, event.query) == ("", "*", "")
        assert conn.respond(event) == (b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nDate: " + DATE.encode()
                                       + b"\r\nServer: ipchub-py\r\nPublic: " + methods + b"\r\n\r\n")


def test_describe_answer_with_body_and_app_headers_in_order() -> None:
    conn = make()
    event = one_event(conn, wire("DESCRIBE", "rtsp://u:p@h:554/live/a?x=1&y=2", 4294967295,
                                 [("Accept", "application/sdp")]))
    assert isinstance(event, ev.Describe)
    assert (event.cseq, event.host, event.path, event.query) == (4294967295, "h:554", "/live/a", "x=1&y=2")
    assert event.uri == "rtsp://u:p@h:554/live/a?x=1&y=2"
    out = conn.respond(event, 200, [("Content-Base", "rtsp://h:554/live/a/"),
                                    ("Content-Type", "application/sdp")], SDP)
    assert out == (b"RTSP/1.0 200 OK\r\nCSeq: 4294967295\r\nDate: " + DATE.encode()
                   + b"\r\nServer: ipchub-py\r\nContent-Base: rtsp://h:554/live/a/\r\n"
                   b"Content-Type: application/sdp\r\nContent-Length: " + str(len(SDP)).encode()
                   + b"\r\n\r\n" + SDP)


def test_setup_answer_creates_the_session_with_its_timeout() -> None:
    conn = make(session_timeout=30.0)
    event = one_event(conn, wire("SETUP", "rtsp://h/live/a/trackID=0", 3,
                                 [("Transport", "RTP/AVP;unicast;client_port=5000-5001")]))
    assert isinstance(event, ev.Setup)
    [spec] = event.transport.specs
    assert spec.client_port == (5000, 5001) and not spec.is_tcp
    assert conn.respond(event, headers={"Transport": "RTP/AVP;unicast;client_port=5000-5001;"
                                                     "server_port=6000-6001"}) == (
        b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nDate: " + DATE.encode() + b"\r\nServer: ipchub-py\r\n"
        b"Session: " + SESSION.encode() + b";timeout=30\r\n"
        b"Transport: RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001\r\n\r\n")
    assert len(SESSION) == 16 and int(SESSION, 16) >= 0


def test_no_cseq_no_date_and_a_custom_server() -> None:
    import random

    from hub.media.rtsp.server import RtspServerConnection

    conn = RtspServerConnection(now=0.0, random_bytes=random.Random(1).randbytes, server="hub")
    event = one_event(conn, wire("GET_PARAMETER", "*", None))
    assert event.cseq is None
    assert conn.respond(event) == b"RTSP/1.0 200 OK\r\nServer: hub\r\n\r\n"


@pytest.mark.parametrize("name", ["CSeq", "Session", "Server", "Date", "content-length"])
def test_engine_headers_cannot_come_from_the_app(name: str) -> None:
    conn = make()
    event = one_event(conn, wire("OPTIONS"))
    with pytest.raises(ValueError):
        conn.respond(event, headers=[(name, "1")])


def test_respond_answers_only_the_current_event() -> None:
    conn = make()
    event = one_event(conn, wire("OPTIONS"))
    conn.respond(event)
    with pytest.raises(ValueError):
        conn.respond(event)
    with pytest.raises(ValueError):
        conn.respond_error(event, BadRequest())


def test_401_carries_the_apps_challenges() -> None:
    seen: list[HubError] = []

    def challenge(exc: HubError) -> list[str]:
        seen.append(exc)
        return ['Digest realm="r", nonce="abc"', 'Basic realm="r"']

    conn = make(challenge=challenge)
    event = one_event(conn, wire("DESCRIBE", cseq=2))
    exc = Unauthorized("who are you")
    out = conn.respond_error(event, exc)
    assert out == (b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nDate: " + DATE.encode() + b"\r\nServer: ipchub-py\r\n"
                   b'WWW-Authenticate: Digest realm="r", nonce="abc"\r\nWWW-Authenticate: Basic realm="r"\r\n\r\n')
    assert seen == [exc] and not conn.closing
    # The client tries again on the same connection.
    assert isinstance(one_event(conn, wire("DESCRIBE", cseq=3)), ev.Describe)


@pytest.mark.parametrize("data", [
    b"OPTIONS * RTSP/1.0\r\nCSeq: x1\r\n\r\n",
    b"OPTIONS * RTSP/1.0\r\nCSeq: 99999999999\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00",
])
def test_malformed_message_is_400_and_closes(data: bytes) -> None:
    conn = make()
    conn.receive_data(data, 0.0)
    with pytest.raises(ProtocolError) as info:
        drain(conn)
    with pytest.raises(ProtocolError):  # and stays so
        conn.next_event()
    assert responses(conn.respond_error(None, info.value)) [0].status == 400
    assert conn.closing and conn.get_timer() is None


def test_a_protocol_error_from_the_app_closes_too() -> None:
    conn = make(handed_over=True)
    event = one_event(conn, request_for("ANNOUNCE", cseq=2))
    [resp] = responses(conn.respond_error(event, BadRequest("not an SDP")))
    assert resp.status == 400 and resp.headers["CSeq"] == "2" and conn.closing
    conn.receive_data(request_for("OPTIONS"), 1.0)
    assert conn.next_event() is NEED_DATA


# -- pipelining ----------------------------------------------------------------------

ANNOUNCE = wire("ANNOUNCE", "rtsp://h/live/a", 2, [("Content-Type", "application/sdp")], SDP)
SETUP = wire("SETUP", "rtsp://h/live/a/streamid=0", 3, [("Transport", TCP_RECORD)])
RECORD_NO_SESSION = wire("RECORD", "rtsp://h/live/a", 4)
FRAMES = b"$\x00\x00\x04abcd$\x01\x00\x02xy"


def record_with(session: str) -> bytes:
    return wire("RECORD", "rtsp://h/live/a", 4, [("Session", session)])


def chunks(data: bytes, step: int | None) -> Iterator[bytes]:
    step = step or len(data)
    for i in range(0, len(data), step):
        yield data[i:i + step]


@pytest.mark.parametrize("step", [None, 1, 5])
def test_pipelined_publish_one_request_at_a_time(step: int | None) -> None:
    """ANNOUNCE, SETUP, RECORD and frames in one write (then a trailing
    partial frame): each request comes out only after the one before it
    was answered, in order; frames after RECORD flow."""
    data = ANNOUNCE + SETUP + record_with(SESSION) + FRAMES + b"$\x00\x00\x09par"
    conn = make(handed_over=True)
    seen: list[object] = []
    for piece in chunks(data, step):
        conn.receive_data(piece, 1.0)
        while (event := conn.next_event()) is not NEED_DATA:
            seen.append(event)
            if isinstance(event, ev.RtspRequestEvent):
                # Until it is answered, no other request comes out.
                frames = drain(conn)
                assert all(isinstance(e, InterleavedFrame) for e in frames)
                seen += frames
                conn.respond(event)
    names = [type(e).__name__ for e in seen]
    assert names == ["Announce", "Setup", "Record", "InterleavedFrame", "InterleavedFrame"]
    assert seen[3] == InterleavedFrame(0, b"abcd") and seen[4] == InterleavedFrame(1, b"xy")
    assert conn.state is RtspState.RECORDING and conn.session_id == SESSION


def test_frames_keep_flowing_while_a_request_is_outstanding() -> None:
    conn = make()
    conn.receive_data(wire("DESCRIBE", cseq=1) + FRAMES + wire("OPTIONS", cseq=2) + FRAMES, 0.0)
    describe = conn.next_event()
    assert isinstance(describe, ev.Describe)
    assert conn.next_event() == InterleavedFrame(0, b"abcd")
    assert conn.next_event() == InterleavedFrame(1, b"xy")
    assert conn.next_event() is NEED_DATA  # OPTIONS waits: DESCRIBE is unanswered
    assert conn.current is describe
    first = conn.respond(describe, 404)
    options = conn.next_event()
    assert isinstance(options, ev.Options) and options.cseq == 2
    second = conn.respond(options)
    assert drain(conn) == [InterleavedFrame(0, b"abcd"), InterleavedFrame(1, b"xy")]
    assert [r.headers["CSeq"] for r in responses(first + second)] == ["1", "2"]


def test_engine_answers_keep_their_place_in_the_pipeline() -> None:
    """A 455 the engine writes for request 2 comes out of the next_event
    call that reaches request 3, before request 3's answer; answering
    before writing it is refused."""
    conn = make()
    conn.receive_data(wire("OPTIONS", cseq=1) + wire("PLAY", cseq=2) + wire("OPTIONS", cseq=3), 0.0)
    one = conn.next_event()
    assert isinstance(one, ev.Options) and conn.data_to_send() == []
    out = [conn.respond(one)]
    three = conn.next_event()
    assert isinstance(three, ev.Options) and three.cseq == 3
    with pytest.raises(ValueError):
        conn.respond(three)
    out += conn.data_to_send()
    out.append(conn.respond(three))
    assert conn.data_to_send() == []
    assert [(r.status, r.headers["CSeq"]) for r in responses(out)] == [(200, "1"), (455, "2"), (200, "3")]


def test_framed_messages_one_request_each() -> None:
    """WSP's WRAP: each message is one whole request; a bad one is answered
    400 in its turn and the connection goes on; frames are not requests."""
    conn = make(role=RtspRole.PLAYER)
    for data in (wire("DESCRIBE", cseq=1), b"NOT RTSP AT ALL\r\n\r\n", wire("OPTIONS", cseq=2)[:-2],
                 wire("OPTIONS", cseq=3) + wire("OPTIONS", cseq=4), b"$\x00\x00\x00",
                 b"RTSP/1.0 200 OK\r\n\r\n", wire("OPTIONS", cseq=5)):
        conn.receive_message(data, 0.0)
    describe = conn.next_event()
    assert isinstance(describe, ev.Describe)
    assert conn.next_event() is NEED_DATA and conn.data_to_send() == []  # all wait their turn
    out = [conn.respond(describe, 404)]
    last = conn.next_event()
    out += conn.data_to_send()
    assert isinstance(last, ev.Options) and last.cseq == 5
    out.append(conn.respond(last))
    got = responses(out)
    assert [r.status for r in got] == [404, 400, 400, 400, 400, 400, 200]
    # A bad message that names its CSeq plainly gets it back (the browser
    # matches answers by CSeq).
    assert [r.headers.get("CSeq") for r in got] == ["1", None, "2", "3", None, None, "5"]
    assert not conn.closing


def test_responses_from_the_peer_are_dropped() -> None:
    conn = make()
    conn.receive_data(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 2\r\n\r\nok" + wire("OPTIONS", cseq=5), 0.0)
    [event] = drain(conn)
    assert isinstance(event, ev.Options) and event.cseq == 5


# -- bounded buffering ----------------------------------------------------------------


def test_bytes_behind_an_outstanding_request_are_bounded() -> None:
    conn = make()
    describe = one_event(conn, wire("DESCRIBE", cseq=1))
    options = wire("OPTIONS", cseq=2, headers=[("X-Pad", "p" * 1000)])
    fed = 0
    while not conn.should_pause_reading:
        conn.receive_data(options, 0.0)
        fed += len(options)
        assert conn.next_event() is NEED_DATA
    assert MAX_PIPELINED <= fed < MAX_PIPELINED + len(options)
    conn.respond(describe)
    assert not conn.should_pause_reading  # nothing outstanding: the reader reads on
    answered = 0
    while (event := conn.next_event()) is not NEED_DATA:
        assert isinstance(event, ev.Options)
        conn.respond(event)
        answered += 1
    assert answered == fed // len(options)


def test_a_glue_that_does_not_pause_gets_a_protocol_error() -> None:
    conn = make()
    one_event(conn, wire("DESCRIBE", cseq=1))
    conn.receive_data(b"OPTIONS * RTSP/1.0\r\n" + b"X" * (4 * MAX_PIPELINED), 0.0)
    with pytest.raises(ProtocolError):
        conn.next_event()


# -- the request deadline (defect 5) ------------------------------------------------


def test_dribbled_head_times_out_from_its_first_byte() -> None:
    conn = make(now=100.0)
    assert conn.get_timer() == 160.0  # only the idle deadline
    data = wire("OPTIONS", cseq=1)
    conn.receive_data(data[:3], 101.0)
    assert drain(conn) == [] and conn.get_timer() == 111.0
    for i, byte in enumerate(data[3:-1]):  # one byte a second keeps the idle timer happy...
        conn.receive_data(bytes([byte]), 101.0 + (i + 1) * 0.2)
        assert drain(conn) == []
        assert conn.get_timer() == 111.0  # ...but not the request deadline
    assert conn.handle_timer(110.99) == [] and not conn.closing
    assert conn.handle_timer(111.0) == [ev.RequestTimeout()]
    [resp] = responses(conn.data_to_send())
    assert resp.status == 408 and "CSeq" not in resp.headers
    assert conn.closing and conn.get_timer() is None and conn.handle_timer(500.0) == []
    conn.receive_data(data[-1:], 112.0)
    assert conn.next_event() is NEED_DATA


def test_dribbled_body_times_out() -> None:
    conn = make(handed_over=True)
    conn.receive_data(ANNOUNCE[:-10], 0.0)
    assert drain(conn) == [] and conn.get_timer() == 10.0
    conn.receive_data(ANNOUNCE[-10:-1], 9.0)
    assert conn.handle_timer(10.0) == [ev.RequestTimeout()]


def test_a_whole_request_stops_the_deadline_and_the_next_starts_its_own() -> None:
    conn = make(request_timeout=5.0)
    data = wire("OPTIONS", cseq=1)
    conn.receive_data(data[:10], 0.0)
    drain(conn)
    assert conn.get_timer() == 5.0
    event = one_event(conn, data[10:] + data[:4], 4.0)
    # The second request's first bytes are here, but the first is not
    # answered yet: the client is not late while we work.
    assert conn.get_timer() == 64.0
    conn.respond(event)
    assert conn.get_timer() == 9.0  # from the last bytes seen (4.0)
    conn.respond(one_event(conn, data[4:], 8.0))
    assert conn.get_timer() == 68.0


def test_partial_frames_do_not_start_the_request_deadline() -> None:
    conn = make()
    conn.receive_data(b"$\x00\x01\x00" + b"x" * 100, 0.0)
    assert drain(conn) == [] and conn.get_timer() == 60.0


# -- the session timeout ------------------------------------------------------------


@pytest.mark.parametrize("state", [RtspState.PLAYING, RtspState.RECORDING, RtspState.READY])
def test_session_times_out_without_bytes_unless_touched(state: RtspState) -> None:
    conn = drive(state)  # at now=0
    assert conn.get_timer() == 60.0
    assert conn.handle_timer(29.9) == []
    conn.receive_data(b"$\x01\x00\x02rr", 30.0)  # an interleaved RTCP report
    assert drain(conn) == [InterleavedFrame(1, b"rr")] and conn.get_timer() == 90.0
    conn.touch(70.0)  # RTCP over UDP, seen by the glue
    assert conn.get_timer() == 130.0
    accept(conn, request_for("GET_PARAMETER", cseq=9, session=SESSION), now=100.0)
    assert conn.handle_timer(159.99) == []
    assert conn.handle_timer(160.0) == [ev.SessionExpired(SESSION)]
    assert conn.closing and conn.data_to_send() == [] and conn.get_timer() is None


def test_session_expired_event_names_the_session() -> None:
    conn = drive(RtspState.PLAYING)
    [expired] = conn.handle_timer(61.0)
    assert isinstance(expired, ev.SessionExpired) and expired.session_id == SESSION
    idle = make()
    [expired] = idle.handle_timer(60.0)
    assert isinstance(expired, ev.SessionExpired) and expired.session_id is None


def test_time_never_goes_backwards() -> None:
    conn = make(now=10.0)
    conn.receive_data(b"$\x00\x00\x00", 5.0)
    assert conn.get_timer() == 70.0


# -- hand-over (defect 7) ----------------------------------------------------------


@pytest.mark.parametrize("step", [None, 1, 7])
def test_take_buffered_is_exact_after_announce(step: int | None) -> None:
    """The front's engine reads ANNOUNCE; what it hands over (the ANNOUNCE's
    raw bytes, then take_buffered) is byte for byte what followed, a
    half-received RECORD and odd formatting included."""
    announce = ANNOUNCE.replace(b"\r\n", b"\n", 2)  # bare LFs survive: raw, not re-encoded
    rest = SETUP + record_with(SESSION)[:-7]
    data = wire("OPTIONS", cseq=1) + announce + rest
    conn = make()
    announced = None
    for piece in chunks(data, step):
        conn.receive_data(piece, 0.0)
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, ev.Options):
                conn.respond(event)
            else:
                assert isinstance(event, ev.Announce) and announced is None
                announced = event
    assert announced is not None and announced.raw == announce
    assert announced.sdp == SDP and announced.content_type == "application/sdp"
    handed = announced.raw + conn.take_buffered()
    assert handed == announce + rest
    assert conn.closing and conn.next_event() is NEED_DATA and conn.get_timer() is None
    # The shard's engine resumes from exactly those bytes.
    shard = make(handed_over=True)
    shard.receive_data(handed, 1.0)
    seen = []
    while (event := shard.next_event()) is not NEED_DATA:
        assert isinstance(event, ev.RtspRequestEvent)
        seen.append(event.method.value)
        shard.respond(event)
    assert seen == ["ANNOUNCE", "SETUP"] and shard.state is RtspState.RECORD_READY
    shard.receive_data(record_with(SESSION)[-7:], 2.0)
    [record] = drain(shard)
    assert isinstance(record, ev.Record)


def test_take_buffered_mid_body_keeps_the_head() -> None:
    conn = make()
    conn.receive_data(ANNOUNCE[:-5], 0.0)
    assert drain(conn) == []
    assert conn.take_buffered() == ANNOUNCE[:-5]


def test_split_uri() -> None:
    assert split_uri("rtsp://u:p@[::1]:554/a/b?c=d/e") == ("[::1]:554", "/a/b", "c=d/e")
    assert split_uri("rtsp://h") == ("h", "/", "")
    assert split_uri("/live/a") == ("", "/live/a", "")
    assert split_uri("*") == ("", "*", "")
    assert split_uri("rtsp://h?x") == ("h", "/", "x")


def test_record_without_session_after_announce_is_454() -> None:
    conn = make(handed_over=True)
    accept(conn, ANNOUNCE)
    accept(conn, SETUP)
    conn.receive_data(RECORD_NO_SESSION, 0.0)
    assert drain(conn) == [] and responses(conn.data_to_send())[0].status == 454
