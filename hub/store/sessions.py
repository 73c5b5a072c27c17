"""Login-session bookkeeping kept inside each user: sid -> generation, and
when each session's newest refresh token expires so old ones can be dropped.

Bounded so a client that logs in in a loop cannot grow the users file;
`RotationLimit` bounds how often one user's sessions may be rotated (each
rotation rewrites the users table and sends it to every child).
"""

from __future__ import annotations

from ..auth.tokens import new_session_id
from ..errors import TooManyRequests
from ..rate import TokenBucket

MAX_SESSIONS = 64
#: Refreshes per user: a burst of ROTATION_BURST, then one per ROTATION_EVERY
#: seconds. A client refreshes once per access token (2 h by default); a
#: valid refresh token in a loop rotated ~260 times a second, each a copy,
#: an fsync'd file and a broadcast of the users table (half a core of the
#: supervisor with only the admin in it).
ROTATION_BURST = 8
ROTATION_EVERY = float(TooManyRequests.retry_after)
#: Logins per user with the right password: a burst of LOGIN_BURST, then one
#: per ROTATION_EVERY seconds. Each opens a session: a copy, an fsync'd file
#: and a broadcast of the users table (~0.6 s of the supervisor's loop at
#: 1,000 users with the longest rights), ~30 a second behind the two scrypt
#: workers. Scripts that log in before every call stay far below it.
LOGIN_BURST = 32
#: Users remembered at once before the fully refilled ones are forgotten
#: (only users with a valid refresh token get here).
ROTATION_USERS = 1024


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


class RotationLimit:
    """A token bucket per user name: `take(name, now)` or TooManyRequests."""

    def __init__(self, burst: int = ROTATION_BURST, every: float = ROTATION_EVERY) -> None:
        self.burst = burst
        self.every = every
        self._users: dict[str, TokenBucket] = {}

    def take(self, name: str, now: float) -> None:
        bucket = self._users.get(name)
        if bucket is None:
            bucket = TokenBucket(self.burst, 1.0 / self.every, now)
        if not bucket.take(now):
            raise TooManyRequests(f"too many logins or token refreshes for this user; one every {self.every:g} s")
        if name not in self._users:
            if len(self._users) >= ROTATION_USERS:
                self._forget_full(now)
            self._users[name] = bucket

    def _forget_full(self, now: float) -> None:
        for name in [n for n, b in self._users.items() if b.full(now)]:
            del self._users[name]
