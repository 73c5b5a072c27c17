"""`hub.workers.Workers`: CPU work off the loop, `workers` at a time, at most
`queue` more waiting, one more refused at once without running; a job
holds its place until its thread is done, even if its caller went away."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hub.auth.hashing import IN_HAND, hashing_workers
from hub.errors import ServiceUnavailable
from hub.workers import Workers


def test_the_pool_bounds_what_runs_and_what_waits() -> None:
    async def main() -> None:
        pool = Workers(2, 3, "t", lambda: ServiceUnavailable("busy"))
        assert pool._pool is None  # no thread until a job comes
        gate = threading.Event()
        running: list[int] = []
        peak = [0]
        lock = threading.Lock()

        def work(n: int) -> int:
            with lock:
                running.append(n)
                peak[0] = max(peak[0], len(running))
            gate.wait(5)
            with lock:
                running.remove(n)
            return n * 10

        tasks = [asyncio.ensure_future(pool.run(work, n)) for n in range(5)]
        await asyncio.sleep(0.1)
        assert pool.pending == 5
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await pool.run(work, 99)  # the sixth: refused at once, never run
        assert time.monotonic() - started < 0.05
        # A caller that goes away does not free its place while its job runs;
        # one whose job still waits drops it (never started), freeing one.
        running_now = sorted(running)
        tasks[running_now[0]].cancel()
        await asyncio.sleep(0.05)
        assert pool.pending == 5
        with pytest.raises(ServiceUnavailable):
            await pool.run(work, 98)
        tasks[4].cancel()
        await asyncio.sleep(0.05)
        assert pool.pending == 4
        gate.set()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert [d for d in done if isinstance(d, int)] == [n * 10 for n in range(4) if n != running_now[0]]
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert peak[0] == 2 and pool.pending == 0
        assert await pool.run(work, 7) == 70  # room again
        pool.close()

    asyncio.run(main())


def test_password_checks_keep_32_in_hand() -> None:
    for n in (1, 2):
        pool = hashing_workers(n)
        assert (pool.workers, pool.workers + pool.queue) == (n, IN_HAND)
        assert isinstance(pool.busy(), ServiceUnavailable)
