"""Server-session state machine: every allowed transition, a 455 for every
other (state, method) pair, session ids and timeouts with `now` passed in."""

from __future__ import annotations

import random

import pytest

from hub.errors import MethodNotAllowed, MethodNotValidInState
from hub.media.rtsp.state import (
    RtspMethod, RtspServerSession, RtspState, new_session_id, next_state,
)

I, A, R, RR, P, RC = (RtspState.INIT, RtspState.ANNOUNCED, RtspState.READY,
                      RtspState.RECORD_READY, RtspState.PLAYING, RtspState.RECORDING)

# Written out by hand (not derived from the module's table).
ALLOWED: dict[tuple[RtspState, str], RtspState] = {
    (I, "OPTIONS"): I, (A, "OPTIONS"): A, (R, "OPTIONS"): R, (RR, "OPTIONS"): RR, (P, "OPTIONS"): P,
    (RC, "OPTIONS"): RC,
    (I, "GET_PARAMETER"): I, (A, "GET_PARAMETER"): A, (R, "GET_PARAMETER"): R,
    (RR, "GET_PARAMETER"): RR, (P, "GET_PARAMETER"): P, (RC, "GET_PARAMETER"): RC,
    (I, "SET_PARAMETER"): I, (A, "SET_PARAMETER"): A, (R, "SET_PARAMETER"): R,
    (RR, "SET_PARAMETER"): RR, (P, "SET_PARAMETER"): P, (RC, "SET_PARAMETER"): RC,
    (I, "TEARDOWN"): I, (A, "TEARDOWN"): I, (R, "TEARDOWN"): I, (RR, "TEARDOWN"): I,
    (P, "TEARDOWN"): I, (RC, "TEARDOWN"): I,
    (I, "DESCRIBE"): I,
    (I, "ANNOUNCE"): A,
    (I, "SETUP"): R, (R, "SETUP"): R,
    (R, "PLAY"): P, (P, "PLAY"): P,
    (R, "PAUSE"): R, (P, "PAUSE"): R,
    (A, "SETUP"): RR, (RR, "SETUP"): RR,
    (RR, "RECORD"): RC,
    (RR, "PAUSE"): RR, (RC, "PAUSE"): RR,
}
METHODS = [m.value for m in RtspMethod]


def _order(key: tuple[RtspState, str]) -> tuple[str, str]:
    return key[0].value, key[1]


ALLOWED_KEYS: list[tuple[RtspState, str]] = sorted(ALLOWED, key=_order)


@pytest.mark.parametrize("state, method", ALLOWED_KEYS)
def test_allowed_transition(state: RtspState, method: str) -> None:
    assert next_state(state, method) is ALLOWED[(state, method)]
    assert next_state(state, method.lower()) is ALLOWED[(state, method)]
    session = RtspServerSession("s", now=0.0)
    session.state = state
    assert session.check(method) is ALLOWED[(state, method)] and session.state is state
    assert session.apply(method, now=5.0) is ALLOWED[(state, method)]
    assert session.state is ALLOWED[(state, method)] and session.last_seen == 5.0


DISALLOWED = [(s, m) for s in RtspState for m in METHODS if (s, m) not in ALLOWED]


def test_table_sizes() -> None:
    assert len(ALLOWED) == 37 and len(DISALLOWED) == 6 * 10 - 37


@pytest.mark.parametrize("state, method", DISALLOWED)
def test_disallowed_is_455(state: RtspState, method: str) -> None:
    session = RtspServerSession("s", now=0.0)
    session.state = state
    with pytest.raises(MethodNotValidInState) as info:
        session.apply(method, now=1.0)
    assert info.value.rtsp_status == 455
    assert session.state is state and session.last_seen == 0.0  # unchanged


def test_unknown_method_is_405() -> None:
    with pytest.raises(MethodNotAllowed) as info:
        next_state(I, "REDIRECT")
    assert info.value.rtsp_status == 405


def test_publisher_and_player_walks() -> None:
    pub = RtspServerSession("p", now=0.0)
    for method in ("OPTIONS", "ANNOUNCE", "SETUP", "SETUP", "RECORD"):
        pub.apply(method, now=1.0)
    assert pub.state is RC and pub.is_publisher
    with pytest.raises(MethodNotValidInState):
        pub.apply("PLAY", now=2.0)
    player = RtspServerSession("q", now=0.0)
    for method in ("OPTIONS", "DESCRIBE", "SETUP", "SETUP", "PLAY"):
        player.apply(RtspMethod(method), now=1.0)
    assert player.state is P and not player.is_publisher
    with pytest.raises(MethodNotValidInState):
        player.apply("RECORD", now=2.0)
    player.apply("TEARDOWN", now=3.0)
    assert player.state is I


def test_session_id_from_passed_random_source() -> None:
    rng = random.Random(7)
    sid = new_session_id(rng.randbytes)
    assert sid == random.Random(7).randbytes(8).hex() and len(sid) == 16
    assert new_session_id(lambda n: bytes(range(n)), 4) == "00010203"


def test_timeout_with_now_as_argument() -> None:
    s = RtspServerSession("abc", now=100.0)
    assert s.header == "abc;timeout=60"
    assert not s.expired(160.0) and s.expired(160.001)
    s.touch(150.0)
    assert not s.expired(210.0) and s.expired(210.5)
    short = RtspServerSession("x", now=0.0, timeout=5)
    assert short.header == "x;timeout=5" and short.expired(5.5)


def test_roles_narrow_the_table() -> None:
    from hub.media.rtsp.state import RtspRole, next_state_for, public_methods, role_after

    assert next_state_for(RtspRole.ANY, I, "ANNOUNCE") is A
    assert next_state_for(RtspRole.ANY, I, "SETUP") is R
    for method in ("ANNOUNCE", "RECORD"):
        with pytest.raises(MethodNotValidInState):
            next_state_for(RtspRole.PLAYER, I if method == "ANNOUNCE" else R, method)
    for state, method in ((I, "DESCRIBE"), (I, "SETUP"), (R, "PLAY")):
        with pytest.raises(MethodNotValidInState):
            next_state_for(RtspRole.PUBLISHER, state, method)
    assert next_state_for(RtspRole.PUBLISHER, A, "SETUP") is RR
    assert role_after(RtspRole.ANY, I) is RtspRole.ANY
    assert role_after(RtspRole.ANY, R) is RtspRole.PLAYER and role_after(RtspRole.ANY, RC) is RtspRole.PUBLISHER
    assert role_after(RtspRole.PLAYER, I) is RtspRole.PLAYER
    assert public_methods(RtspRole.PLAYER) == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN",
                                               "GET_PARAMETER", "SET_PARAMETER"]
    assert public_methods(RtspRole.PUBLISHER) == ["OPTIONS", "ANNOUNCE", "SETUP", "PAUSE", "RECORD", "TEARDOWN",
                                                  "GET_PARAMETER", "SET_PARAMETER"]
    assert public_methods(RtspRole.ANY) == METHODS
