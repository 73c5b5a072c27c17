"""`/api/v1/server` and `/api/v1/runtime`, aggregated over the process tree."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psutil

from .. import __version__
from ..gotime import go_duration, rfc3339nano
from ..ipc import messages as M
from ..procstats import process_extra

if TYPE_CHECKING:
    from .tree import ProcessTree

#: `/api/v1/runtime` needs no token (as the reference), and each gathering
#: asks every child, which walks its heap for `extra`: at most one every
#: this many seconds per kind; requests that came before it started share it.
GATHER_EVERY = 0.1

_ARCH = {"x86_64": "AMD64", "amd64": "AMD64", "aarch64": "ARM64", "arm64": "ARM64",
         "i386": "386", "i686": "386", "armv7l": "ARM"}


class RuntimeStats:
    def __init__(self, tree: ProcessTree) -> None:
        self.tree = tree
        self.started = datetime.now(timezone.utc)
        self._started_mono = time.monotonic()
        self._procs: dict[int, psutil.Process] = {}
        self._last_cpu: tuple[float, float] | None = None
        # Per `extra`: one gathering at a time, and the last one (its start, its answer).
        self._gathering = {False: asyncio.Lock(), True: asyncio.Lock()}
        self._gathered: dict[bool, tuple[float, dict[str, Any]]] = {}

    def server_info(self) -> dict[str, Any]:
        machine = platform.machine()
        return {
            "vendor": "ipchub-py",
            "name": "ipchub",
            "version": __version__,
            "os": platform.system(),
            "arch": _ARCH.get(machine.lower(), machine.upper()),
            "start_on": rfc3339nano(self.started),
            "duration": go_duration(time.monotonic() - self._started_mono),
        }

    def _tree_processes(self) -> list[psutil.Process]:
        pids = [os.getpid(), *self.tree.pids()]
        live = {}
        for pid in pids:
            p = self._procs.get(pid)
            if p is None:
                try:
                    p = psutil.Process(pid)
                except psutil.Error:
                    continue
            live[pid] = p
        self._procs = live
        return list(live.values())

    def _proc_figures(self) -> dict[str, int]:
        priv = virt = 0
        cpu_seconds = 0.0
        for p in self._tree_processes():
            try:
                with p.oneshot():
                    m = p.memory_info()
                    t = p.cpu_times()
            except psutil.Error:
                continue
            priv += m.rss
            virt += m.vms
            cpu_seconds += t.user + t.system + t.children_user + t.children_system
        now = time.monotonic()
        # CPU percent of one core since the previous call (the reference
        # reports a whole-number percentage).
        if self._last_cpu is None:
            elapsed = now - self._started_mono
            used = cpu_seconds
        else:
            elapsed = now - self._last_cpu[0]
            used = cpu_seconds - self._last_cpu[1]
        self._last_cpu = (now, cpu_seconds)
        cpu = int(round(100.0 * used / elapsed)) if elapsed > 0 else 0
        return {"cpu": max(0, cpu), "priv": priv // 1024, "virt": virt // 1024,
                "uptime": int(now - self._started_mono)}

    async def runtime(self, extra: bool) -> dict[str, Any]:
        """The tree's figures, gathered after this request arrived: by a
        gathering of its own, or by one that others asked for meanwhile."""
        arrived = time.monotonic()
        async with self._gathering[extra]:
            last = self._gathered.get(extra)
            if last is not None:
                if last[0] >= arrived:
                    return last[1]
                wait = last[0] + GATHER_EVERY - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            started = time.monotonic()
            out = await self._gather(extra)
            self._gathered[extra] = (started, out)
            return out

    async def _gather(self, extra: bool) -> dict[str, Any]:
        replies = await self.tree.request_all(M.STATS({"extra": extra}))
        counters = {"streams": {"sources": 0, "consumers": 0},
                    "rtsp": {"total": 0, "active": 0},
                    "flv": {"total": 0, "active": 0},
                    "wsp": {"total": 0, "active": 0},
                    "rtmp": {"total": 0, "active": 0},
                    "webrtc": {"total": 0, "active": 0}}
        extras: list[dict[str, Any]] = []
        for _child, reply in replies:
            for group, fields in counters.items():
                got = reply.get(group, {})
                for k in fields:
                    fields[k] += int(got.get(k, 0))
            if extra and "extra" in reply:
                extras.append(reply["extra"])
        out: dict[str, Any] = {"on": rfc3339nano(datetime.now(timezone.utc)),
                               "proc": self._proc_figures(), **counters}
        if extra:
            extras.insert(0, process_extra("supervisor"))
            out["extra"] = {"processes": extras}
        return out
