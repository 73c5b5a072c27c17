"""Password hashing off the event loop, bounded.

scrypt costs tens of milliseconds of CPU and 16 MiB per check. Run on an
event loop it would stall everything the process serves; run in an
unbounded pool (`asyncio.to_thread`), a stranger's stream of wrong
passwords queues without end and fills the cores, and real logins wait
behind it until they time out. A `HashingPool` runs at most `workers`
checks at a time in threads of its own (hashlib's scrypt releases the GIL)
with at most `queue` in all, running or waiting; one more is refused at
once (`ServiceUnavailable`: 503) and costs nothing.

Used by the front's RTSP Basic checks (hub.api.rtsp.challenge) and by the
supervisor's logins and password changes (hub.supervisor.stores).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from ..errors import ServiceUnavailable

__all__ = ["HashingPool", "WORKERS", "QUEUE"]

T = TypeVar("T")

#: Checks running at once, and how many may be in hand in all.
WORKERS = 2
QUEUE = 32


class HashingPool:
    def __init__(self, workers: int = WORKERS, queue: int = QUEUE, name: str = "scrypt") -> None:
        self.workers = workers
        self.queue = queue
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        #: Checks in hand: running or waiting for a worker.
        self.in_hand = 0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` in a worker; ServiceUnavailable at once if `queue`
        checks are in hand already."""
        if self.in_hand >= self.queue:
            raise ServiceUnavailable("too many password checks in progress")
        if self._pool is None:  # threads only once a check comes (none in an idle process)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
        self.in_hand += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.in_hand -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
