"""Giving malloc's free pages back to the kernel.

Why: a front serving churning players allocates and frees buffers of every
size (requests, frames, transports); glibc's malloc keeps the freed pages
inside its heap (only the top of the heap shrinks on its own), so a front's
resident memory creeps up under churn although the live data stays the
same (bench/soak.py: ~0.2 MiB a minute with 500 churning players, ~2.7 MiB
given back by one `malloc_trim(0)`). `malloc_trim` hands every free page of
every arena back (madvise), so the heap's resident size follows its live
data.

When: never on a timer at rest. `busy()` (a player left) asks for one trim
`every` seconds later, if none is pending, so steady churn trims once a
minute; `quiet()` (the front's last stream view closed) trims a second
later. One trim takes well under a millisecond for a heap of a few MiB.
"""

from __future__ import annotations

import asyncio
import ctypes
from typing import Callable

#: Seconds from the first session end to the trim while players churn.
TRIM_EVERY = 60.0
#: Seconds from the last stream view closing to the trim.
QUIET_DELAY = 1.0


def _load_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_malloc_trim = _load_trim()


def trim_heap() -> bool:
    """Give the free pages inside malloc's heap back now; True if any were
    (False, too, where malloc is not glibc's)."""
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False


class HeapTrimmer:
    """At most one pending trim, scheduled by activity (see the module)."""

    def __init__(self, every: float = TRIM_EVERY, quiet_delay: float = QUIET_DELAY,
                 trim: Callable[[], object] = trim_heap) -> None:
        self.every = every
        self.quiet_delay = quiet_delay
        self._trim = trim
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self.trims = 0  # done so far (the tests read it)

    def busy(self) -> None:
        """Something was freed: trim within `every` seconds."""
        self._at_most(self.every)

    def quiet(self) -> None:
        """The process went quiet: trim shortly."""
        self._at_most(self.quiet_delay)

    def _at_most(self, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test's synchronous use): nothing to schedule on
            return
        due = loop.time() + delay
        if self._handle is not None:
            if self._due <= due:
                return
            self._handle.cancel()
        self._due = due
        self._handle = loop.call_at(due, self._run)

    def _run(self) -> None:
        self._handle = None
        self._trim()
        self.trims += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
