"""RtspServerConnection under Hypothesis: any bytes, in any interleaving
with timers, answers and errors, either yield events / NEED_DATA or raise
ProtocolError, never anything else; and the invariants hold throughout
(one request at a time, refused requests change nothing, every answer is a
well-formed RTSP response)."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from .rtsp_server_helpers import SESSION, TCP_PLAY, TCP_RECORD, make, request_for

from hub.errors import (Forbidden, HubError, MethodNotValidInState, NotFound, ProtocolError, ServiceUnavailable,
                        Unauthorized)
from hub.media.rtsp import NEED_DATA, InterleavedFrame, RtspReader, RtspResponse
from hub.media.rtsp.events import RequestTimeout, RtspRequestEvent, SessionExpired
from hub.media.rtsp.server import RtspServerConnection
from hub.media.rtsp.state import RtspMethod, RtspRole

METHODS = [m.value for m in RtspMethod]
VOCABULARY = (
    [request_for(m, cseq=i, session=s) for i, m in enumerate(METHODS) for s in (None, SESSION, "deadbeef")]
    + [request_for("SETUP", 50, SESSION).replace(TCP_PLAY.encode(), TCP_RECORD.encode()),
       b"$\x00\x00\x03abc", b"$\x01\x00\x00", b"\r\n", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n",
       b"FOO * RTSP/1.0\r\nCSeq: 3\r\n\r\n"]
)
ERRORS: list[type[HubError]] = [Unauthorized, Forbidden, NotFound, ProtocolError, ServiceUnavailable,
                                MethodNotValidInState]

piece = st.one_of(
    st.binary(max_size=48),
    st.builds(lambda w, cut: w[:cut] if cut >= 0 else w, st.sampled_from(VOCABULARY), st.integers(-20, 80)),
)
#: The requests that move a session forward, often enough to reach every state.
FORWARD = [request_for("ANNOUNCE", 60), request_for("SETUP", 61),
           request_for("SETUP", 62, SESSION).replace(TCP_PLAY.encode(), TCP_RECORD.encode()),
           request_for("RECORD", 63, SESSION), request_for("PLAY", 64, SESSION)]
#: Well-formed traffic only.
polite_op = st.one_of(
    st.tuples(st.just("data"), st.sampled_from(FORWARD)),
    st.tuples(st.just("respond"), st.just(200)),
    st.tuples(st.just("data"), st.sampled_from(VOCABULARY)),
    st.tuples(st.just("respond"), st.sampled_from([200, 200, 200, 403])),
    st.tuples(st.just("error"), st.sampled_from([Unauthorized, NotFound])),
    st.tuples(st.just("timer"), st.floats(0, 2)),
)
op = st.one_of(
    polite_op,
    st.tuples(st.just("data"), st.lists(piece, min_size=1, max_size=4).map(b"".join)),
    st.tuples(st.just("message"), piece),
    st.tuples(st.just("timer"), st.floats(0, 40)),
    st.tuples(st.just("touch"), st.floats(0, 5)),
    st.tuples(st.just("respond"), st.sampled_from([200, 201, 302, 403, 404, 500])),
    st.tuples(st.just("error"), st.sampled_from(ERRORS)),
    st.tuples(st.just("take"), st.none()),
)


class Checker:
    """Drives one engine and checks the invariants after every step."""

    def __init__(self, conn: RtspServerConnection) -> None:
        self.conn = conn
        self.now = 0.0
        self.out = bytearray()

    def snapshot(self) -> tuple[Any, ...]:
        c = self.conn
        return c.state, c.session_id, c.role

    def flush(self) -> None:
        for answer in self.conn.data_to_send():
            [one] = Checker.parse(answer)
            self.out += answer

    @staticmethod
    def parse(data: bytes) -> list[RtspResponse]:
        reader = RtspReader()
        reader.feed(data)
        out = []
        for msg in reader.events():
            assert isinstance(msg, RtspResponse)
            out.append(msg)
        assert reader.buffered == 0
        return out

    def drain(self) -> None:
        conn = self.conn
        while True:
            ev = conn.next_event()
            self.flush()
            if ev is NEED_DATA:
                break
            if isinstance(ev, RtspRequestEvent):
                # One request at a time: it is the current one, and nothing
                # but frames comes out until it is answered.
                assert conn.current is ev
                while (more := conn.next_event()) is not NEED_DATA:
                    assert isinstance(more, InterleavedFrame)
                assert conn.data_to_send() == []
                return
            assert isinstance(ev, InterleavedFrame)

    def step(self, kind: str, arg: Any) -> None:
        conn = self.conn
        before = self.snapshot()
        if kind == "data":
            self.now += 0.01
            conn.receive_data(arg, self.now)
        elif kind == "message":
            self.now += 0.01
            conn.receive_message(arg, self.now)
        elif kind == "timer":
            self.now += arg
            for ev in conn.handle_timer(self.now):
                assert isinstance(ev, (RequestTimeout, SessionExpired)) and conn.closing
            self.flush()
        elif kind == "touch":
            self.now += arg
            conn.touch(self.now)
        elif kind == "respond" and conn.current is not None:
            [one] = Checker.parse(answer := conn.respond(conn.current, arg))
            self.out += answer
            if not 200 <= arg < 300:
                assert self.snapshot() == before  # refused: nothing changed
        elif kind == "error" and conn.current is not None:
            [one] = Checker.parse(answer := conn.respond_error(conn.current, arg()))
            self.out += answer
            assert self.snapshot() == before
            if arg is ProtocolError:
                assert conn.closing
        elif kind == "take":
            conn.take_buffered()
            assert conn.closing
        if conn.closing:
            assert conn.next_event() is NEED_DATA and conn.get_timer() is None
        self.drain()
        if not conn.closing:
            timer = conn.get_timer()
            assert timer is not None and timer >= 0

    def check_output(self) -> None:
        Checker.parse(bytes(self.out))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([RtspRole.ANY, RtspRole.PLAYER, RtspRole.PUBLISHER]), st.lists(op, max_size=40))
def test_any_interleaving_yields_events_or_protocol_error(role: RtspRole, ops: list[tuple[str, Any]]) -> None:
    checker = Checker(make(role=role))
    try:
        for kind, arg in ops:
            checker.step(kind, arg)
    except ProtocolError as exc:
        checker.out += checker.conn.respond_error(None, exc)
        assert checker.conn.closing
    checker.check_output()
    event(f"reached {checker.conn.state.value}")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([RtspRole.ANY, RtspRole.PLAYER, RtspRole.PUBLISHER]), st.lists(polite_op, min_size=10, max_size=50))
def test_well_formed_traffic_keeps_the_invariants(role: RtspRole, ops: list[tuple[str, Any]]) -> None:
    checker = Checker(make(role=role))
    for kind, arg in ops:
        checker.step(kind, arg)
    checker.check_output()
    event(f"reached {checker.conn.state.value}")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_any_bytes_events_or_protocol_error(chunks: list[bytes]) -> None:
    conn = make()
    try:
        for i, chunk in enumerate(chunks):
            conn.receive_data(chunk, float(i))
            while (ev := conn.next_event()) is not NEED_DATA:
                assert isinstance(ev, (RtspRequestEvent, InterleavedFrame))
                if isinstance(ev, RtspRequestEvent):
                    conn.respond(ev)
    except ProtocolError:
        pass
