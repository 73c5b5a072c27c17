"""Threads for CPU work a process must keep off its event loop, bounded.

Some requests cost real CPU in Python or C: a password's scrypt (~50 ms,
16 MiB), joining an hour of a recording (~0.9 s). Run on the loop, one
stalls everything the process serves; run in asyncio's default pool
(`to_thread`), a client repeating them queues work without end. `Workers`
runs at most `workers` jobs at once, with at most `queue` more waiting; one
more is refused at once (its `busy()` error, a 503), nothing started.

A job counts until its thread is done with it: a request that went away
(a client hanging up, a caller's timeout) does not free its place while
the work it started still runs, so disconnecting and asking again cannot
pile up jobs. Threads are made on the first job (none in an idle process).

Used by the RTSP Basic and login password checks (hub.auth.hashing) and by
the fronts' recording indexing and joins (hub.api.rest.recording_files).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

from .errors import HubError

__all__ = ["Workers"]

T = TypeVar("T")


class Workers:
    def __init__(self, workers: int, queue: int, name: str, busy: Callable[[], HubError]) -> None:
        self.workers = workers
        self.queue = queue
        self.name = name
        self.busy = busy
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # `pending` goes down in the job's thread
        #: Jobs running or waiting for a thread.
        self.pending = 0

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """``fn(*args)`` in a thread, or ``busy()`` raised (nothing started)."""
        with self._lock:
            if self.pending >= self.workers + self.queue:
                raise self.busy()
            self.pending += 1
        try:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
            job = self._pool.submit(fn, *args)
        except BaseException:
            self._done(None)
            raise
        job.add_done_callback(self._done)
        return asyncio.wrap_future(job)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        return await self.submit(fn, *args)

    def _done(self, _job: Future[T] | None) -> None:
        with self._lock:
            self.pending -= 1

    def close(self) -> None:
        """Drop what waits; what runs finishes in its thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
