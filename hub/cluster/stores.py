"""The stores' Redis backend: users and routes shared by every node.

Each table is the same JSON as its file in the data folder (`hub:store:<kind>`)
plus a revision (`hub:store:<kind>:rev`). A change WATCHes the revision,
applies the change to the node's copy (reloaded first if the revision moved),
and writes table, revision + 1 and a `hub:changed` message in one
MULTI/EXEC; another node's write in between fails the EXEC and the change is
tried again on the new table, so no write is lost however many nodes write
at once. Every node's subscription reloads a table whose revision moved and
sends it to its children.

The first node started on an empty Redis imports its own users.json and
routetable.json (or creates `admin` as a single node does), holding
`hub:bootstrap` meanwhile so two nodes starting together do not both
invent an admin password. A Redis that came back empty (no AOF) gets the
tables back from the first node that reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable, Sequence, TypeVar

from redis.exceptions import WatchError

from ..auth.tokens import KEY_BYTES, generate_key
from ..errors import StoreUnavailable
from ..store.backend import RemoteChange, TableSpec
from . import keys as K
from .link import LINK_ERRORS, RedisLink

log = logging.getLogger("hub.cluster.stores")

T = TypeVar("T")
R = TypeVar("R")

#: Tries of one change when other nodes keep writing first.
MAX_ATTEMPTS = 32
BOOTSTRAP_TTL_MS = 30_000
BOOTSTRAP_WAIT = 35.0

# SET the table only if it is absent, and its revision with it.
_SEED = """
if redis.call('SETNX', KEYS[1], ARGV[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class RedisBackend:
    name = "redis"

    def __init__(self, link: RedisLink, node: str) -> None:
        self.link = link
        self.node = node
        self.specs: dict[str, TableSpec[Any]] = {}
        self.tables: dict[str, Any] = {}  # the node's copy, as last read or written
        self.revs: dict[str, int] = {}
        self._callback: RemoteChange | None = None
        self._reloads: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._seed = link.client.register_script(_SEED)
        self.conflicts = 0  # changes tried again because another node wrote first

    # -- start ------------------------------------------------------------------
    async def open(self, specs: Sequence[TableSpec[Any]]) -> dict[str, Any]:
        self.specs = {s.kind: s for s in specs}
        client = self.link.client
        missing = [s for s in specs if not await client.exists(K.table_key(s.kind))]
        if missing:
            await self._bootstrap(missing)
        for spec in specs:
            await self._reload(spec.kind)
        return dict(self.tables)

    async def _bootstrap(self, missing: list[TableSpec[Any]]) -> None:
        client = self.link.client
        if await client.set(K.BOOTSTRAP, self.node, nx=True, px=BOOTSTRAP_TTL_MS):
            try:
                for spec in missing:
                    table, _store = spec.load_file(spec.path)
                    text = K.dumps(spec.to_json(table))
                    if await self._seed(keys=[K.table_key(spec.kind), K.rev_key(spec.kind)], args=[text, 1]):
                        log.info("imported %s from %s into an empty Redis", spec.kind, spec.path)
            finally:
                await client.delete(K.BOOTSTRAP)
            return
        log.info("another node is importing its stores into Redis; waiting")
        deadline = asyncio.get_running_loop().time() + BOOTSTRAP_WAIT
        while await client.exists(K.BOOTSTRAP):
            if asyncio.get_running_loop().time() > deadline:
                raise StoreUnavailable("another node's import into Redis did not finish")
            await asyncio.sleep(0.2)

    async def token_key(self, path: str) -> bytes:
        """The cluster's key: the first node's own DATA/token.key if it has one."""
        client = self.link.client
        key = await client.get(K.TOKEN_KEY)
        if key is None:
            try:
                with open(path, "rb") as f:
                    mine = f.read()
            except OSError:
                mine = b""
            await client.set(K.TOKEN_KEY, mine if len(mine) >= KEY_BYTES else generate_key(), nx=True)
            key = await client.get(K.TOKEN_KEY)
        if not isinstance(key, bytes) or len(key) < KEY_BYTES:
            raise StoreUnavailable("the token key in Redis is missing or too short")
        return key

    def on_remote_change(self, callback: RemoteChange) -> None:
        self._callback = callback

    # -- changes -------------------------------------------------------------------
    async def update(self, spec: TableSpec[T], current: T, change: Callable[[T], R]) -> tuple[T, R]:
        self.link.require()
        kind = spec.kind
        try:
            for _ in range(MAX_ATTEMPTS):
                async with self.link.client.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(K.rev_key(kind))
                        rev = int(await pipe.get(K.rev_key(kind)) or 0)
                        # Our own copy, not the caller's: a reload may have moved it on.
                        current = self.tables[kind]
                        if rev != self.revs.get(kind):
                            raw = await pipe.get(K.table_key(kind))
                            if raw is None:
                                raise StoreUnavailable(f"the {kind} table is missing from Redis")
                            current = spec.from_json(json.loads(raw))
                            if self._keep(kind, current, rev) and self._callback is not None:
                                self._callback(kind, current)  # the children get it even if the change fails
                        before = spec.to_json(current)
                        table = spec.from_json(before)
                        result = change(table)
                        after = spec.to_json(table)
                        if after == before:
                            return current, result
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(K.table_key(kind), K.dumps(after))
                        pipe.set(K.rev_key(kind), rev + 1)
                        pipe.publish(K.CHANGED, K.dumps({"kind": kind, "rev": rev + 1, "node": self.node}))
                        await pipe.execute()
                    except WatchError:
                        self.conflicts += 1
                        continue
                self._keep(kind, table, rev + 1)
                # A newer revision may have been read meanwhile (it holds this change too).
                latest: T = self.tables[kind]
                return latest, result
        except LINK_ERRORS as e:
            self.link.broken(e)
            raise StoreUnavailable() from None
        raise StoreUnavailable(f"the {kind} table changed {MAX_ATTEMPTS} times under this change; try again")

    def _keep(self, kind: str, table: Any, rev: int) -> bool:
        """Hold `table` as of `rev`, unless a newer one is held already (a
        reload and a change of ours can finish in either order)."""
        if kind in self.tables and rev <= self.revs.get(kind, 0):
            return False
        self.tables[kind] = table
        self.revs[kind] = rev
        return True

    # -- other nodes' changes ---------------------------------------------------------
    def on_changed(self, data: bytes) -> None:
        """A `hub:changed` message: reload the table if it is newer than ours."""
        try:
            msg = json.loads(data)
            kind, rev = str(msg["kind"]), int(msg["rev"])
        except (ValueError, KeyError, TypeError):
            log.warning("bad store change message: %r", data[:100])
            return
        if kind in self.specs and rev > self.revs.get(kind, 0):
            self.reload_soon(kind)

    def reload_soon(self, kind: str) -> None:
        """One reload per table at a time; a change during it asks for another."""
        task = self._reloads.get(kind)
        if task is not None and not task.done():
            self._again.add(kind)
            return
        self._reloads[kind] = asyncio.get_running_loop().create_task(self._reload_task(kind),
                                                                     name=f"reload {kind}")

    async def _reload_task(self, kind: str) -> None:
        while True:
            self._again.discard(kind)
            try:
                changed = await self._reload(kind)
            except LINK_ERRORS as e:
                self.link.broken(e)  # reloaded again once the link is back
                return
            if changed and self._callback is not None:
                self._callback(kind, self.tables[kind])
            if kind not in self._again:
                return

    async def _reload(self, kind: str) -> bool:
        """Read the table if its revision moved; True if it did."""
        spec = self.specs[kind]
        raw, rev_raw = await self.link.client.mget(K.table_key(kind), K.rev_key(kind))
        if raw is None:
            if kind in self.tables:  # Redis lost it: give it back what this node holds
                text = K.dumps(spec.to_json(self.tables[kind]))
                if await self._seed(keys=[K.table_key(kind), K.rev_key(kind)], args=[text, self.revs[kind]]):
                    log.warning("the %s table was missing from Redis; stored this node's copy", kind)
                return False
            raise StoreUnavailable(f"the {kind} table is missing from Redis")
        rev = int(rev_raw or 0)
        if kind in self.tables and rev <= self.revs.get(kind, 0):
            return False
        return self._keep(kind, spec.from_json(json.loads(raw)), rev)

    async def resync(self) -> None:
        """After a reconnect: every table whose revision moved while away."""
        for kind in self.specs:
            if await self._reload(kind) and self._callback is not None:
                self._callback(kind, self.tables[kind])

    async def aclose(self) -> None:
        for task in self._reloads.values():
            task.cancel()
        await asyncio.gather(*self._reloads.values(), return_exceptions=True)
