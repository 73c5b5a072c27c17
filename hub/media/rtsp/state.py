"""The RTSP server-session state machine, the one place that says which
method is valid when (gortsplib `server_session.go` style).

Pure: it validates and transitions; the caller does the I/O. A method in
the wrong state raises MethodNotValidInState (455); a method RTSP does not
have raises MethodNotAllowed (405). Time is an argument (`now`, seconds from
any monotonic clock), so timeouts are tested without sleeping.

States. A player goes INIT -SETUP-> READY -PLAY-> PLAYING; a publisher goes
INIT -ANNOUNCE-> ANNOUNCED -SETUP-> RECORD_READY -RECORD-> RECORDING.
READY and RECORD_READY are both RFC 2326's "Ready", split so that a player
cannot RECORD and a publisher cannot PLAY. TEARDOWN from anywhere ends in
INIT (the caller then drops the session).

Roles. A connection serves players or publishers, never both: RtspRole
narrows the table. A front's connection starts as ANY and becomes a PLAYER
at its first SETUP or a PUBLISHER at ANNOUNCE; a connection handed to a
shard is a PUBLISHER from the start; a browser transport (WSP, WebSocket,
HTTP tunnel) is a PLAYER from the start.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from ...errors import MethodNotAllowed, MethodNotValidInState

DEFAULT_TIMEOUT = 60.0


class RtspState(enum.Enum):
    INIT = "init"
    ANNOUNCED = "announced"
    READY = "ready"
    RECORD_READY = "record_ready"
    PLAYING = "playing"
    RECORDING = "recording"


class RtspMethod(enum.Enum):
    OPTIONS = "OPTIONS"
    DESCRIBE = "DESCRIBE"
    ANNOUNCE = "ANNOUNCE"
    SETUP = "SETUP"
    PLAY = "PLAY"
    PAUSE = "PAUSE"
    RECORD = "RECORD"
    TEARDOWN = "TEARDOWN"
    GET_PARAMETER = "GET_PARAMETER"
    SET_PARAMETER = "SET_PARAMETER"


S = RtspState
M = RtspMethod
_ANY = tuple(RtspState)

TRANSITIONS: dict[tuple[RtspState, RtspMethod], RtspState] = {
    # Keep-alives and capability queries never change the state.
    **{(s, m): s for s in _ANY for m in (M.OPTIONS, M.GET_PARAMETER, M.SET_PARAMETER)},
    **{(s, M.TEARDOWN): S.INIT for s in _ANY},
    (S.INIT, M.DESCRIBE): S.INIT,
    (S.INIT, M.ANNOUNCE): S.ANNOUNCED,
    (S.INIT, M.SETUP): S.READY,
    (S.READY, M.SETUP): S.READY,  # one SETUP per track
    (S.READY, M.PLAY): S.PLAYING,
    (S.READY, M.PAUSE): S.READY,
    (S.PLAYING, M.PLAY): S.PLAYING,  # some players re-PLAY as a keep-alive
    (S.PLAYING, M.PAUSE): S.READY,
    (S.ANNOUNCED, M.SETUP): S.RECORD_READY,
    (S.RECORD_READY, M.SETUP): S.RECORD_READY,
    (S.RECORD_READY, M.RECORD): S.RECORDING,
    (S.RECORD_READY, M.PAUSE): S.RECORD_READY,
    (S.RECORDING, M.PAUSE): S.RECORD_READY,
}


class RtspRole(enum.Enum):
    ANY = "any"
    PLAYER = "player"
    PUBLISHER = "publisher"


_PUBLISHER_STATES = frozenset((S.ANNOUNCED, S.RECORD_READY, S.RECORDING))
_PLAYER_STATES = frozenset((S.READY, S.PLAYING))


def next_state_for(role: RtspRole, state: RtspState, method: str | RtspMethod) -> RtspState:
    """`next_state`, and 455 for a method the role never takes: a
    publisher's connection never DESCRIBEs, SETUPs to play or PLAYs; a
    player's never ANNOUNCEs or RECORDs."""
    m = to_method(method)
    nxt = next_state(state, m)
    if role is RtspRole.PLAYER and (m in (M.ANNOUNCE, M.RECORD) or nxt in _PUBLISHER_STATES):
        raise MethodNotValidInState(f"{m.value} on a playing connection")
    if role is RtspRole.PUBLISHER and (m in (M.DESCRIBE, M.PLAY) or nxt in _PLAYER_STATES):
        raise MethodNotValidInState(f"{m.value} on a publishing connection")
    return nxt


def role_after(role: RtspRole, state: RtspState) -> RtspRole:
    """The role a connection has once it is in `state`."""
    if role is RtspRole.ANY:
        if state in _PLAYER_STATES:
            return RtspRole.PLAYER
        if state in _PUBLISHER_STATES:
            return RtspRole.PUBLISHER
    return role


def public_methods(role: RtspRole) -> list[str]:
    """What an OPTIONS answer lists: every method the role can ever use."""
    return [m.value for m in RtspMethod
            if any(mm is m and _role_allows(role, s, m) for (s, mm) in TRANSITIONS)]


def _role_allows(role: RtspRole, state: RtspState, method: RtspMethod) -> bool:
    try:
        next_state_for(role, state, method)
    except MethodNotValidInState:
        return False
    return True


def to_method(method: str | RtspMethod) -> RtspMethod:
    """An RTSP method by name; 405 for names RTSP does not have."""
    if isinstance(method, RtspMethod):
        return method
    try:
        return RtspMethod(method.upper())
    except ValueError:
        raise MethodNotAllowed(f"unknown RTSP method {method[:30]!r}") from None


def next_state(state: RtspState, method: str | RtspMethod) -> RtspState:
    """The state after `method`, or 455 when `method` is not valid now."""
    m = to_method(method)
    try:
        return TRANSITIONS[(state, m)]
    except KeyError:
        raise MethodNotValidInState(f"{m.value} not valid in state {state.value}") from None


def new_session_id(random_bytes: Callable[[int], bytes], nbytes: int = 8) -> str:
    """A session id from the caller's random source (e.g. `os.urandom`,
    or a seeded one in tests): 2*nbytes lower-case hex digits."""
    return random_bytes(nbytes).hex()


class RtspServerSession:
    """One session's state and liveness; nothing else."""

    __slots__ = ("id", "state", "timeout", "last_seen")

    def __init__(self, session_id: str, now: float, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.id = session_id
        self.state = RtspState.INIT
        self.timeout = timeout
        self.last_seen = now

    @property
    def is_publisher(self) -> bool:
        return self.state in (S.ANNOUNCED, S.RECORD_READY, S.RECORDING)

    @property
    def header(self) -> str:
        """The Session header value to answer with."""
        return f"{self.id};timeout={int(self.timeout)}"

    def check(self, method: str | RtspMethod) -> RtspState:
        """Validate without transitioning; returns the state it would go to."""
        return next_state(self.state, method)

    def apply(self, method: str | RtspMethod, now: float) -> RtspState:
        """Validate, transition and count as activity. Call after the
        request's own checks passed, before answering it."""
        self.state = next_state(self.state, method)
        self.last_seen = now
        return self.state

    def touch(self, now: float) -> None:
        """Any traffic (a request, an RTCP receiver report) keeps it alive."""
        self.last_seen = now

    def expired(self, now: float) -> bool:
        return now - self.last_seen > self.timeout
