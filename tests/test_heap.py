"""hub.heap: malloc's free pages go back to the kernel after activity, and
nothing is scheduled at rest."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from hub.heap import HeapTrimmer


def test_trim_gives_free_pages_inside_the_heap_back() -> None:
    # A fresh interpreter: 40 MiB of 8 KiB blocks (malloc's heap, not mmap),
    # every eighth kept so the heap's top cannot shrink on its own.
    code = textwrap.dedent("""
        import os
        from hub.heap import trim_heap
        def rss():
            return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        blocks = [bytes(8192) for _ in range(5000)]
        kept = blocks[::8]
        del blocks
        before = rss()
        assert trim_heap()
        print(before - rss(), len(kept))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    freed, kept = (int(x) for x in out.stdout.split())
    assert kept == 625
    assert freed > 20 << 20, f"only {freed} bytes given back"


def test_busy_trims_once_later_and_nothing_more_at_rest() -> None:
    async def main() -> None:
        done: list[float] = []
        loop = asyncio.get_running_loop()
        t = HeapTrimmer(every=0.2, quiet_delay=0.05, trim=lambda: done.append(loop.time()))
        start = loop.time()
        for _ in range(50):  # a burst of players leaving: one trim
            t.busy()
        await asyncio.sleep(0.1)
        assert done == []
        await asyncio.sleep(0.2)
        assert len(done) == 1 and done[0] - start >= 0.19 and t.trims == 1
        await asyncio.sleep(0.5)
        assert len(done) == 1, "no trim without activity"
        t.busy()
        await asyncio.sleep(0.3)
        assert len(done) == 2

    asyncio.run(main())


def test_quiet_brings_the_pending_trim_forward_and_close_cancels() -> None:
    async def main() -> None:
        done: list[float] = []
        loop = asyncio.get_running_loop()
        t = HeapTrimmer(every=5.0, quiet_delay=0.05, trim=lambda: done.append(loop.time()))
        t.busy()
        t.quiet()
        t.busy()  # a later deadline does not push the sooner one back
        await asyncio.sleep(0.15)
        assert len(done) == 1, "quiet trims within its delay, once"
        await asyncio.sleep(0.1)
        assert len(done) == 1, "the busy trim it replaced does not run as well"
        t.busy()
        t.close()
        await asyncio.sleep(0.1)
        assert len(done) == 1

    asyncio.run(main())
