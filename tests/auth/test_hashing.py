"""`HashingPool`: password checks off the loop, `workers` at a time, at most
`queue` in hand, one more refused at once without running."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hub.auth.hashing import HashingPool
from hub.errors import ServiceUnavailable


def test_the_pool_bounds_what_runs_and_what_waits() -> None:
    async def main() -> None:
        pool = HashingPool(workers=2, queue=5)
        assert pool._pool is None  # no thread until a check comes
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
        assert pool.in_hand == 5
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await pool.run(work, 99)  # the sixth: refused at once, never run
        assert time.monotonic() - started < 0.05
        # The loop turns meanwhile (the work is in threads).
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5
        gate.set()
        assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
        assert peak[0] == 2 and pool.in_hand == 0
        assert 99 not in running
        assert await pool.run(work, 7) == 70  # room again
        pool.close()

    asyncio.run(main())
