"""Figures a process reports about itself for `/api/v1/runtime?extra=1`."""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

import psutil

_self: psutil.Process | None = None


def _process() -> psutil.Process:
    """This process (made on first use: a forked child is not its zygote)."""
    global _self
    if _self is None or _self.pid != os.getpid():
        _self = psutil.Process()
    return _self


def process_extra(name: str) -> dict[str, Any]:
    """The Python equivalents of the Go reference's heap/gc figures."""
    p = _process()
    with p.oneshot():
        mem = p.memory_info()
        times = p.cpu_times()
        return {
            "name": name,
            "pid": os.getpid(),
            "rss": mem.rss // 1024,
            "vms": mem.vms // 1024,
            "cpu_seconds": round(times.user + times.system, 3),
            "threads": threading.active_count(),
            "gc": {"counts": list(gc.get_count()),
                   "collections": [s["collections"] for s in gc.get_stats()]},
            "objects": len(gc.get_objects()),
        }
