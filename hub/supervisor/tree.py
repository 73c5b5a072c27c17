"""The process tree: spawn shards and fronts, watch them, replace the dead.

A child is watched two ways: its exit, which wakes the loop at once (its
pidfd, or asyncio's child watcher for a child started with exec), and rare
pings over its IPC link, which find a child whose loop hangs. The pings are
generous on purpose: a child that is busy (thousands of players, a loaded
machine) answers late but is healthy, and killing it would drop everyone
it serves; only a child that answers nothing for about half a minute is
killed. Restarts back off (0.1 s doubling to 5 s) so a child that crashes at
start cannot spin the machine; a child that has run for a while starts again
from the shortest delay.

Children come from the zygote (`hub.zygote`, `hub.supervisor.spawn`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from ..config import Config
from ..errors import HubError
from ..ipc import messages as M
from ..ipc.channel import IpcChannel, IpcHandler
from ..ipc.methods import Ask, R
from .spawn import Process, Spawner

log = logging.getLogger("hub.supervisor")

#: Seconds between pings of a child that answered its first one.
HEARTBEAT_INTERVAL = 10.0
#: How long a ping may wait for its answer.
HEARTBEAT_TIMEOUT = 10.0
#: Pings in a row without an answer before the child is killed (~40 s).
HEARTBEAT_MISSES = 3
#: A new child's first ping: how long it may take (its start-up, on a
#: loaded machine), tried this many times before the child is killed.
FIRST_PING_TIMEOUT = 10.0
FIRST_PING_TRIES = 3
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
STABLE_AFTER = 10.0


@dataclass
class Child:
    kind: str
    index: int
    proc: Process | None = None
    channel: IpcChannel | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_MIN
    misses: int = 0
    watcher: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: The child said it serves: a front listens, a shard serves its socket,
    #: both hold the stores (its `serving` notice).
    serving: bool = False

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


class ProcessTree:
    """Owns every child process; `handler_for(child)` serves each link."""

    def __init__(self, config: Config, instance: str, run_dir: str,
                 handler_for: Callable[[Child], IpcHandler]) -> None:
        self.config = config
        self.instance = instance
        self.run_dir = run_dir
        self._handler_for = handler_for
        self.children: list[Child] = (
            [Child("shard", i) for i in range(config.shard_count)]
            + [Child("front", i) for i in range(config.front_count)])
        self._stopping = False
        #: False while draining: a child that exits then is not replaced.
        self.restart_dead = True
        #: Called with each child that exited (before any restart).
        self.on_exit: list[Callable[[Child], None]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self.spawner = Spawner()

    async def start(self) -> None:
        self.spawner.start()
        for child in self.children:
            await self._spawn(child)
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")

    async def _spawn(self, child: Child) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            child.proc = await self.spawner.spawn(child.kind, child.index, theirs, self.instance,
                                                  self.run_dir, self.config)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child.channel = IpcChannel.from_fd(ours.detach(), self._handler_for(child))
        child.started_at = time.monotonic()
        child.misses = 0
        child.ready.clear()
        child.serving = False
        child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.name}")
        log.info("started %s pid %d", child.name, child.proc.pid)

    async def _watch(self, child: Child) -> None:
        assert child.proc is not None
        first = asyncio.create_task(self._first_ping(child), name=f"first-ping-{child.name}")
        try:
            rc = await child.proc.wait()
        finally:
            first.cancel()
        if child.channel is not None:
            child.channel.close()
            child.channel = None
        child.serving = False
        for cb in self.on_exit:
            cb(child)
        if self._stopping or not self.restart_dead:
            return
        lived = time.monotonic() - child.started_at
        if lived >= STABLE_AFTER:
            child.backoff = BACKOFF_MIN
        delay = child.backoff
        child.backoff = min(BACKOFF_MAX, child.backoff * 2)
        child.restarts += 1
        log.warning("%s pid %d exited (%s) after %.1f s; restarting in %.1f s",
                    child.name, child.proc.pid, rc, lived, delay)
        await self._respawn(child, delay)

    async def _respawn(self, child: Child, delay: float) -> None:
        """Start `child` again after `delay`; a failed start backs off and tries again."""
        while True:
            await asyncio.sleep(delay)
            if self._stopping or not self.restart_dead:
                return
            try:
                await self._spawn(child)
                return
            except (HubError, OSError) as e:
                delay = child.backoff
                child.backoff = min(BACKOFF_MAX, child.backoff * 2)
                log.error("%s could not be started (%s); trying again in %.1f s", child.name, e, delay)

    async def _first_ping(self, child: Child) -> None:
        """A new child is ready once it answers; one that never does is killed."""
        ch, proc = child.channel, child.proc
        for _ in range(FIRST_PING_TRIES):
            if ch is None or ch.closed or proc is None or proc.returncode is not None:
                return
            try:
                await ch.call(M.PING({}), timeout=FIRST_PING_TIMEOUT)
            except HubError:
                continue
            child.misses = 0
            child.ready.set()
            return
        if proc is not None and proc.returncode is None:
            log.error("%s pid %d never answered; killing it", child.name, proc.pid)
            proc.kill()

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            await asyncio.gather(*(self._ping(c) for c in self.children if c.ready.is_set()))

    async def _ping(self, child: Child) -> None:
        ch, proc = child.channel, child.proc
        if ch is None or proc is None or proc.returncode is not None:
            return
        try:
            await ch.call(M.PING({}), timeout=HEARTBEAT_TIMEOUT)
            child.misses = 0
        except HubError:
            if ch is not child.channel:
                return  # it exited meanwhile and was replaced
            child.misses += 1
            log.warning("%s pid %d did not answer a ping (%d in a row)", child.name, proc.pid, child.misses)
            if child.misses >= HEARTBEAT_MISSES and proc.returncode is None:
                log.error("%s pid %d missed %d heartbeats; killing it", child.name, proc.pid, child.misses)
                proc.kill()

    async def request_all(self, msg: Ask[R], kinds: tuple[str, ...] = ("shard", "front"),
                          timeout: float = 2.0) -> list[tuple[Child, R]]:
        """Ask every live child of the given kinds; children that fail are left out."""
        targets = [c for c in self.children if c.kind in kinds and c.channel is not None]

        async def one(c: Child) -> tuple[Child, R] | None:
            assert c.channel is not None
            try:
                return c, await c.channel.call(msg, timeout=timeout)
            except HubError as e:
                log.warning("%s did not answer %s: %s", c.name, msg[0].name, e)
                return None

        results = await asyncio.gather(*(one(c) for c in targets))
        return [r for r in results if r is not None]

    async def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every child, SIGKILL what is left after `grace` seconds."""
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        procs = [c.proc for c in self.children if c.proc is not None and c.proc.returncode is None]
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                log.warning("pid %d ignored SIGTERM; killing it", p.pid)
                p.kill()
                await p.wait()
        watchers = [c.watcher for c in self.children if c.watcher is not None]
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for c in self.children:
            if c.channel is not None:
                c.channel.close()
                c.channel = None
        await self.spawner.aclose()

    def pids(self) -> list[int]:
        """The live children's pids, and the zygote's (all of the tree but us)."""
        return ([c.proc.pid for c in self.children if c.proc is not None and c.proc.returncode is None]
                + self.spawner.pids())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
