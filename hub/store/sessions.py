"""Login-session bookkeeping kept inside each user: sid -> generation, and
when each session's newest refresh token expires so old ones can be dropped.

Bounded so a client that logs in in a loop cannot grow the users file.
"""

from __future__ import annotations

from ..auth.tokens import new_session_id

MAX_SESSIONS = 64


def prune(gens: dict[str, int], expires: dict[str, int], now: int, room: int = 0) -> None:
    """Drop expired sessions, then the soonest-expiring until `room` slots are free."""
    for sid in [s for s, exp in expires.items() if exp <= now]:
        gens.pop(sid, None)
        expires.pop(sid, None)
    for sid in [s for s in gens if s not in expires]:
        del gens[sid]
    excess = len(gens) + room - MAX_SESSIONS
    if excess > 0:
        for sid in sorted(gens, key=lambda s: expires[s])[:excess]:
            del gens[sid]
            del expires[sid]


def open_session(gens: dict[str, int], expires: dict[str, int], now: int,
                 expires_at: int) -> tuple[str, int]:
    """A new session at generation 1; returns (sid, generation)."""
    prune(gens, expires, now, room=1)
    sid = new_session_id()
    gens[sid] = 1
    expires[sid] = expires_at
    return sid, 1


def rotate_session(gens: dict[str, int], expires: dict[str, int], sid: str, gen: int,
                   now: int, expires_at: int) -> int | None:
    """Bump the generation if `gen` is current and the session alive; None if not."""
    if gens.get(sid) != gen or expires.get(sid, 0) <= now:
        return None
    gens[sid] = gen + 1
    expires[sid] = expires_at
    return gen + 1


def close_session(gens: dict[str, int], expires: dict[str, int], sid: str) -> bool:
    expires.pop(sid, None)
    return gens.pop(sid, None) is not None
