"""Password hashing off the event loop, bounded.

scrypt costs tens of milliseconds of CPU and 16 MiB per check. Run on an
event loop it would stall everything the process serves; run in an
unbounded pool (`asyncio.to_thread`), a stranger's stream of wrong
passwords queues without end and fills the cores, and real logins wait
behind it until they time out. `hashing_workers` gives a process its
`hub.workers.Workers` for that: `workers` checks at a time (hashlib's
scrypt releases the GIL) and at most `IN_HAND` in all, running or waiting;
one more is refused at once (503) and costs nothing.

Used by the front's RTSP Basic checks (hub.api.rtsp.challenge: 2 at once)
and by the supervisor: logins, which anyone may ask for (1 at once), and
admins' password changes, apart so a login flood cannot hold them up (2 at
once, 256 in hand: an admin's script creating users in bulk).
"""

from __future__ import annotations

from ..errors import ServiceUnavailable
from ..workers import Workers

__all__ = ["hashing_workers", "IN_HAND"]

#: Checks running or waiting, in all.
IN_HAND = 32


def hashing_workers(workers: int, in_hand: int = IN_HAND) -> Workers:
    return Workers(workers, in_hand - workers, "scrypt",
                   lambda: ServiceUnavailable("too many password checks in progress"))
