"""RtspServerConnection: every method in every state and role, the session
checks (454), the state checks (455), and "a refused request changes
nothing" (issue 12, defect 9) at the level of events."""

from __future__ import annotations

import pytest
from .rtsp_server_helpers import (PATHS, SESSION, accept, drain, drive, make, one_event, request_for,
                                 responses)

from hub.errors import Forbidden, HubError, NotFound, Unauthorized
from hub.media.rtsp import events as ev
from hub.media.rtsp.server import RtspServerConnection
from hub.media.rtsp.state import RtspMethod, RtspRole, RtspState

I, A, R, RR, P, RC = (RtspState.INIT, RtspState.ANNOUNCED, RtspState.READY,
                      RtspState.RECORD_READY, RtspState.PLAYING, RtspState.RECORDING)
METHODS = [m.value for m in RtspMethod]

# Written out by hand (not derived from hub.media.rtsp.state): what each
# (role, state) accepts and where a 2xx answer leads. Everything else is 455.
KEEP = {"OPTIONS", "GET_PARAMETER", "SET_PARAMETER"}
EXPECTED: dict[tuple[RtspRole, RtspState], dict[str, RtspState]] = {
    (RtspRole.ANY, I): {**{m: I for m in KEEP}, "TEARDOWN": I, "DESCRIBE": I, "ANNOUNCE": A, "SETUP": R},
    (RtspRole.PLAYER, I): {**{m: I for m in KEEP}, "TEARDOWN": I, "DESCRIBE": I, "SETUP": R},
    (RtspRole.PUBLISHER, I): {**{m: I for m in KEEP}, "TEARDOWN": I, "ANNOUNCE": A},
    (RtspRole.PLAYER, R): {**{m: R for m in KEEP}, "TEARDOWN": I, "SETUP": R, "PLAY": P, "PAUSE": R},
    (RtspRole.PLAYER, P): {**{m: P for m in KEEP}, "TEARDOWN": I, "PLAY": P, "PAUSE": R},
    (RtspRole.PUBLISHER, A): {**{m: A for m in KEEP}, "TEARDOWN": I, "SETUP": RR},
    (RtspRole.PUBLISHER, RR): {**{m: RR for m in KEEP}, "TEARDOWN": I, "SETUP": RR, "RECORD": RC,
                               "PAUSE": RR},
    (RtspRole.PUBLISHER, RC): {**{m: RC for m in KEEP}, "TEARDOWN": I, "PAUSE": RR},
}
EVENT_CLASS = {"OPTIONS": ev.Options, "DESCRIBE": ev.Describe, "ANNOUNCE": ev.Announce, "SETUP": ev.Setup,
               "PLAY": ev.Play, "PAUSE": ev.Pause, "RECORD": ev.Record, "TEARDOWN": ev.Teardown,
               "GET_PARAMETER": ev.GetParameter, "SET_PARAMETER": ev.SetParameter}


def connection_in(role: RtspRole, state: RtspState) -> RtspServerConnection:
    if state is I:
        return make(role=role)
    assert PATHS[state][0] is role
    return drive(state)


CASES = [(role, state, m) for (role, state) in EXPECTED for m in METHODS]


def test_expected_table_covers_every_pair() -> None:
    assert len(CASES) == 8 * 10
    assert sum(len(v) for v in EXPECTED.values()) == 7 + 6 + 5 + 7 + 6 + 5 + 7 + 5


@pytest.mark.parametrize("role, state, method", CASES)
def test_method_in_state(role: RtspRole, state: RtspState, method: str) -> None:
    conn = connection_in(role, state)
    sid = conn.session_id
    data = request_for(method, cseq=40, session=sid)
    if method == "SETUP" and role is RtspRole.PUBLISHER:
        data = data.replace(b"interleaved=0-1", b"interleaved=2-3;mode=record")
    allowed = EXPECTED[(role, state)]
    conn.receive_data(data, 1.0)
    events = drain(conn)
    if method not in allowed:
        # The engine answers 455 itself; nothing reaches the app.
        assert events == []
        [resp] = responses(conn.data_to_send())
        assert resp.status == 455 and resp.headers["CSeq"] == "40"
        assert resp.headers.get("Session") == (f"{sid};timeout=60" if sid else None)
        assert (conn.state, conn.session_id, conn.role, conn.closing) == (state, sid, role, False)
        return
    [event] = events
    assert type(event) is EVENT_CLASS[method] and event.cseq == 40
    assert event.request.method == method and event.host == "127.0.0.1:1554"
    assert event.path == ("/live/a/trackID=0" if method == "SETUP" else "/live/a")
    # Refused by the app: nothing changes (defect 9), the connection stays.
    [refused] = responses(conn.respond(event, 403))
    assert refused.status == 403 and refused.headers["CSeq"] == "40"
    assert (conn.state, conn.session_id, conn.role, conn.closing) == (state, sid, role, False)
    # The same request again, accepted: the table's transition.
    event = one_event(conn, data.replace(b"CSeq: 40", b"CSeq: 41"), 2.0)
    [ok] = responses(conn.respond(event))
    assert ok.status == 200 and ok.headers["CSeq"] == "41"
    assert conn.state is allowed[method]
    if method == "TEARDOWN":
        assert conn.closing and conn.session_id is None
        assert ok.headers.get("Session") == (f"{sid};timeout=60" if sid else None)
    elif method in ("SETUP", "ANNOUNCE") and sid is None:
        assert conn.session_id == SESSION and ok.headers["Session"] == f"{SESSION};timeout=60"
        assert conn.role is (RtspRole.PUBLISHER if method == "ANNOUNCE" else RtspRole.PLAYER)
    else:
        assert conn.session_id == sid and not conn.closing and conn.role is role


SESSION_STATES = [s for s in RtspState if s is not I]


@pytest.mark.parametrize("state", SESSION_STATES)
@pytest.mark.parametrize("method", METHODS)
def test_wrong_session_is_454_and_changes_nothing(state: RtspState, method: str) -> None:
    conn = drive(state)
    sid, role = conn.session_id, conn.role
    assert sid is not None
    for bad in ("0123456789abcdef", "x" * 129, sid + "0", "bad id"):
        conn.receive_data(request_for(method, cseq=9, session=bad), 1.0)
        assert drain(conn) == []
        [resp] = responses(conn.data_to_send())
        assert resp.status == 454 and resp.headers["CSeq"] == "9" and "Session" not in resp.headers
        assert (conn.state, conn.session_id, conn.role, conn.closing) == (state, sid, role, False)


@pytest.mark.parametrize("state", SESSION_STATES)
@pytest.mark.parametrize("method", ["PLAY", "PAUSE", "RECORD", "TEARDOWN"])
def test_session_methods_without_session_header_are_454(state: RtspState, method: str) -> None:
    conn = drive(state)
    sid = conn.session_id
    conn.receive_data(request_for(method, cseq=3), 1.0)
    assert drain(conn) == []
    [resp] = responses(conn.data_to_send())
    assert resp.status == 454
    assert (conn.state, conn.session_id, conn.closing) == (state, sid, False)


@pytest.mark.parametrize("method", METHODS)
def test_a_session_header_before_any_session_is_454(method: str) -> None:
    conn = make()
    conn.receive_data(request_for(method, cseq=2, session="feedfacefeedface"), 0.0)
    assert drain(conn) == []
    [resp] = responses(conn.data_to_send())
    assert resp.status == 454 and conn.session_id is None and conn.state is I


@pytest.mark.parametrize("state", SESSION_STATES)
def test_keep_alives_and_setup_need_no_session_header(state: RtspState) -> None:
    """GET_PARAMETER/SET_PARAMETER/OPTIONS keep-alives and a later SETUP
    without the header are served (clients differ here)."""
    conn = drive(state)
    for method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER"):
        resp = accept(conn, request_for(method, cseq=5))
        assert resp.headers["Session"] == f"{conn.session_id};timeout=60"
    assert conn.state is state


def test_defect9_teardown_with_a_wrong_session_leaves_the_real_one_playing() -> None:
    conn = drive(P)
    conn.receive_data(request_for("TEARDOWN", cseq=7, session="0000000000000000"), 5.0)
    assert drain(conn) == []
    assert [r.status for r in responses(conn.data_to_send())] == [454]
    assert conn.state is P and conn.session_id == SESSION and not conn.closing
    # The real session still answers its own requests.
    resp = accept(conn, request_for("GET_PARAMETER", cseq=8, session=SESSION))
    assert resp.headers["Session"] == f"{SESSION};timeout=60"


def test_defect9_announce_on_a_playing_connection_never_reaches_the_app() -> None:
    conn = drive(P)
    for session in (SESSION, None):
        conn.receive_data(request_for("ANNOUNCE", cseq=7, session=session), 5.0)
        assert drain(conn) == []  # no Announce event: nothing is handed to a shard
        assert [r.status for r in responses(conn.data_to_send())] == [455]
        assert conn.state is P and conn.role is RtspRole.PLAYER and not conn.closing


def test_a_player_connection_never_records_a_publisher_never_plays() -> None:
    player = make(role=RtspRole.PLAYER)
    player.receive_data(request_for("ANNOUNCE"), 0.0)
    assert drain(player) == [] and responses(player.data_to_send())[0].status == 455
    pub = make(handed_over=True)
    assert pub.role is RtspRole.PUBLISHER
    for method in ("DESCRIBE", "SETUP", "PLAY"):
        pub.receive_data(request_for(method), 0.0)
        assert drain(pub) == [] and responses(pub.data_to_send())[0].status == 455
    with pytest.raises(ValueError):
        make(role=RtspRole.PLAYER, handed_over=True)


def test_a_front_connection_becomes_a_player_at_its_first_setup() -> None:
    conn = make()
    roles = [conn.role]
    for method in ("DESCRIBE", "SETUP", "TEARDOWN"):
        accept(conn, request_for(method, session=conn.session_id))
        roles.append(conn.role)
    assert roles == [RtspRole.ANY, RtspRole.ANY, RtspRole.PLAYER, RtspRole.PLAYER] and conn.closing


def test_unknown_method_is_405_with_allow() -> None:
    conn = make(role=RtspRole.PLAYER)
    conn.receive_data(b"REDIRECT rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\n\r\n", 0.0)
    assert drain(conn) == []
    [resp] = responses(conn.data_to_send())
    assert resp.status == 405 and resp.headers["CSeq"] == "3"
    assert resp.headers["Allow"] == "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
    assert not conn.closing


@pytest.mark.parametrize("transport", [None, "", "RTP/SAVP;unicast", "RTP/AVP;client_port=99999"])
def test_setup_without_a_usable_transport_is_461(transport: str | None) -> None:
    conn = make()
    headers = [] if transport is None else [("Transport", transport)]
    from .rtsp_server_helpers import wire

    conn.receive_data(wire("SETUP", "rtsp://h/live/a/trackID=0", 4, headers), 0.0)
    assert drain(conn) == []
    [resp] = responses(conn.data_to_send())
    assert resp.status == 461 and conn.session_id is None and not conn.closing


@pytest.mark.parametrize("exc, status", [(Forbidden(), 403), (NotFound(), 404), (Unauthorized(), 401)])
def test_app_errors_change_nothing_and_keep_the_connection(exc: HubError, status: int) -> None:
    conn = drive(R)
    event = one_event(conn, request_for("PLAY", cseq=12, session=SESSION))
    [resp] = responses(conn.respond_error(event, exc))
    assert resp.status == status and resp.headers["CSeq"] == "12"
    assert resp.headers["Session"] == f"{SESSION};timeout=60"
    assert conn.state is R and not conn.closing and conn.current is None
