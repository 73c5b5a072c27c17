"""Drain on SIGTERM, reload on SIGHUP, and what health and readiness say.

Drain: the first SIGTERM tells every child to `drain` — fronts close their
listening sockets (new connections go to another node) and refuse new
sessions on the connections they have, shards refuse new publishers — and
takes no new grants. Live streams and their players run on for
`drain_grace` seconds (less if every player and publisher has left), then
the supervisor stops the tree: publishers, pulls and players are closed and
every child exits. A second SIGTERM stops at once.

Reload: SIGHUP reads the configuration again (file, environment, flags).
The keys of `RELOADABLE_KEYS` are sent to every child (`reload`), which
swaps its Config where it reads it, so nobody is dropped; any other changed
key is logged as needing a restart. A configuration that does not validate
is logged and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Protocol

from ..config import RELOADABLE_KEYS, Config, ConfigError, changed_keys
from ..ipc import messages as M
from ..logs import level_number
from .admission import Admission
from .metrics import TreeMetrics
from .tree import ProcessTree

log = logging.getLogger("hub.supervisor")

def with_reloadable(old: Config, new: Config) -> Config:
    """`old` with the reloadable keys of `new`."""
    d, n = old.to_dict(), new.to_dict()
    for key in RELOADABLE_KEYS:
        section, _, name = key.rpartition(".")
        if section:
            d[section][name] = n[section][name]
        else:
            d[name] = n[name]
    return Config.from_dict(d)


class Supervisor(Protocol):
    """What the drain and the reload need of hub.supervisor.main.Supervisor."""

    config: Config
    tree: ProcessTree
    admission: Admission
    metrics: TreeMetrics

    def stop(self) -> None: ...


class Lifecycle:
    def __init__(self, sup: Supervisor, load_config: Callable[[], Config] | None) -> None:
        self.sup = sup
        self.load_config = load_config
        self.draining = False
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- SIGTERM --------------------------------------------------------------------
    def on_sigterm(self) -> None:
        if self.draining:
            log.info("second SIGTERM: stopping now")
            self.sup.stop()
            return
        self.draining = True
        self._spawn(self._drain(), "drain")

    async def _drain(self) -> None:
        sup = self.sup
        grace = float(sup.config.drain_grace)
        log.info("draining: no new connections; live streams and players run on for up to %g s", grace)
        deadline = time.monotonic() + grace
        sup.admission.draining = True
        sup.metrics.draining = True
        sup.tree.restart_dead = False
        await sup.tree.request_all(M.DRAIN({}), timeout=2.0)
        adm = sup.admission
        emptied = asyncio.Event()
        adm.on_empty = emptied.set  # the last session's release wakes the drain: no polling
        try:
            if not adm.empty:
                await asyncio.wait_for(emptied.wait(), max(0.0, deadline - time.monotonic()))
            log.info("drained: no players or publishers left")
        except asyncio.TimeoutError:
            log.info("drain grace over: closing %d players and %d publishers", adm.players, adm.publishers)
        finally:
            adm.on_empty = None
        sup.stop()

    # -- SIGHUP ---------------------------------------------------------------------
    def on_sighup(self) -> None:
        self._spawn(self.reload(), "reload")

    async def reload(self) -> set[str]:
        """Apply the reloadable keys of the configuration read again; the keys applied."""
        sup = self.sup
        if self.load_config is None:
            log.warning("reload: no configuration source to read again")
            return set()
        try:
            new = self.load_config()
        except ConfigError as e:
            log.error("reload: %s; the running configuration stays", e)
            return set()
        old = sup.config
        changed = changed_keys(old, new)
        needs_restart = changed - RELOADABLE_KEYS
        if needs_restart:
            log.warning("reload: %s changed but need a restart", ", ".join(sorted(needs_restart)))
        applied = changed & RELOADABLE_KEYS
        if not applied:
            log.info("reload: nothing to apply")
            return set()
        config = with_reloadable(old, new)
        sup.config = config
        sup.tree.config = config  # children started from now on get it
        logging.getLogger().setLevel(level_number(config.log.level))
        replies = await sup.tree.request_all(M.RELOAD({"config": config.to_dict()}), timeout=5.0)
        log.info("reload: applied %s in %d of %d children", ", ".join(sorted(applied)), len(replies),
                 len(sup.tree.children))
        return applied

    # -- health ---------------------------------------------------------------------
    def health(self) -> M.Health:
        up = sum(1 for c in self.sup.tree.children if c.channel is not None and c.ready.is_set())
        return {"status": "ok", "children": up, "of": len(self.sup.tree.children),
                "draining": self.draining}

    def readiness(self) -> M.Readiness:
        """Ready: every child answers heartbeats and serves, and no drain."""
        children = {c.name: c.channel is not None and c.ready.is_set() and c.serving
                    for c in self.sup.tree.children}
        return {"ready": all(children.values()) and not self.draining, "draining": self.draining,
                "children": children}
