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
