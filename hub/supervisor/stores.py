"""Users, routes, recording rules and the token key, owned by the supervisor.

Every change is a function applied to a copy of one table; the backend
(`hub.store.backend`) makes it atomic and durable before the API answers —
the JSON files of the data folder, or Redis for a cluster — and the new
table is then sent to every child, which keeps a read-only copy for auth
checks, route matching and recording. Changes of one node are serialised
by one lock, so 50 writers at once cannot interleave; a cluster's nodes are
serialised by Redis transactions. A table that another node changed is
sent to the children as soon as the backend reports it.

A new password's scrypt runs before the lock, in a thread (never inside a
change, which Redis may run twice). A write still queued when the front
stopped waiting (its `deadline`) is dropped: the front answered 503.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable, TypeVar, cast

from ..auth.hashing import hashing_workers
from ..auth.passwords import needs_rehash
from ..auth.tokens import TokenService
from ..config import Config
from ..errors import BadRequest, Forbidden, ServiceUnavailable
from ..ipc.messages import (PatternArgs, RecordUpsertArgs, RefreshArgs, RoutesUpsertArgs, StoreArgs, TokenPair,
                            UsersDeleteArgs, UsersUpsertArgs)
from ..store.backend import FileBackend, StoreBackend, TableSpec
from ..store.persist import atomic_write_json
from ..store.recordings import FILE_NAME as RECORD_RULES_FILE, RecordTable, rule_from_obj
from ..store.routes import RouteTable
from ..store.sessions import LOGIN_BURST, RotationLimit, open_session
from ..store.users import UserTable, hash_for, initial_users, validate_name, validate_password
from ..workers import Workers

log = logging.getLogger("hub.supervisor.stores")

KEY_FILE = "token.key"
ADMIN_PASSWORD_FILE = "admin.password"
LOGIN_FAILED = "用户名或密码错误"  # the reference's message: wrong name or password

R = TypeVar("R")


def table_specs(config: Config) -> list[TableSpec[Any]]:
    """The tables the supervisor owns, as the backends see them."""
    data = config.data

    def load_users(path: str) -> tuple[UserTable, bool]:
        table, generated, store = initial_users(path, os.environ.get("HUB_ADMIN_PASSWORD"))
        if generated is not None:
            atomic_write_json(os.path.join(data, ADMIN_PASSWORD_FILE), {"admin": generated}, mode=0o600)
            log.warning("first start: created user 'admin' with password %s (also in %s/%s)",
                        generated, data, ADMIN_PASSWORD_FILE)
        for what in table.skipped:
            log.warning("users file: skipped %s", what)
        return table, store

    def load_routes(path: str) -> tuple[RouteTable, bool]:
        table = RouteTable.load(path) if os.path.exists(path) else RouteTable()
        for what in table.skipped:
            log.warning("route table: skipped %s", what)
        return table, False

    # Configured recording rules are this node's (its config file); the API's are stored.
    configured = [rule_from_obj(r, "config") for r in config.record]

    def load_record(path: str) -> tuple[RecordTable, bool]:
        table = RecordTable.load(path, configured)
        for what in table.skipped:
            log.warning("recording rules: skipped %s", what)
        return table, False

    return [
        TableSpec("users", str(config.data_path(config.users_file)), load_users, UserTable.save,
                  UserTable.to_file_list, UserTable.from_file_list, UserTable.to_wire),
        TableSpec("routes", str(config.data_path(config.routetable_file)), load_routes, RouteTable.save,
                  RouteTable.to_file_list, RouteTable.from_file_list, RouteTable.to_wire),
        TableSpec("record", str(config.data_path(RECORD_RULES_FILE)), load_record, RecordTable.save,
                  RecordTable.to_file_list, lambda data: RecordTable.from_file_list(data, configured),
                  RecordTable.to_wire),
    ]


#: Logins hashed at once in the supervisor.
LOGIN_WORKERS = 1
#: Admins' password changes hashed at once, and in hand in all.
ADMIN_WORKERS = 2
ADMIN_IN_HAND = 256


class Stores:
    def __init__(self, config: Config, broadcast: Callable[[StoreArgs], Awaitable[Any]],
                 backend: StoreBackend | None = None) -> None:
        self.config = config
        self._broadcast = broadcast
        self.backend: StoreBackend = backend or FileBackend()
        self.specs = {s.kind: s for s in table_specs(config)}
        self.tables: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()  # children get the tables in the order they changed
        self._remote: set[str] = set()  # kinds another node changed, not yet sent
        self._pusher: asyncio.Task[None] | None = None
        self.key = b""
        self.tokens: TokenService | None = None
        #: Logins' scrypt: off the loop, one at a time, 32 in hand (anyone may
        #: POST /api/v1/login: a flood costs at most one core and is refused,
        #: 503, beyond that; it does not queue).
        self.hashing = hashing_workers(LOGIN_WORKERS)
        self.rotations = RotationLimit()
        self.logins = RotationLimit(burst=LOGIN_BURST)
        #: Admins' password changes (users created or updated): apart from
        #: logins, so a login flood does not hold them up.
        self.admin_hashing = hashing_workers(ADMIN_WORKERS, ADMIN_IN_HAND)
        if isinstance(self.backend, FileBackend):  # files load at once, as they always did
            os.makedirs(config.data, exist_ok=True)
            self.tables = self.backend.load(list(self.specs.values()))
            self._keyed(self.backend.load_key(os.path.join(config.data, KEY_FILE)))

    async def open(self) -> None:
        """Load every table and the token key (before the children start)."""
        if not self.tables:
            os.makedirs(self.config.data, exist_ok=True)
            self.tables = await self.backend.open(list(self.specs.values()))
            self._keyed(await self.backend.token_key(os.path.join(self.config.data, KEY_FILE)))
        self.backend.on_remote_change(self._remote_change)
        log.info("stores: %d users, %d routes, %d recording rules (%s)", len(self.users), len(self.routes),
                 len(self.record), self.backend.name)

    def _keyed(self, key: bytes) -> None:
        self.key = key
        self.tokens = TokenService(key)

    @property
    def users(self) -> UserTable:
        table: UserTable = self.tables["users"]
        return table

    @property
    def routes(self) -> RouteTable:
        table: RouteTable = self.tables["routes"]
        return table

    @property
    def record(self) -> RecordTable:
        table: RecordTable = self.tables["record"]
        return table

    def _tokens(self) -> TokenService:
        assert self.tokens is not None, "Stores.open() first"
        return self.tokens

    def snapshot(self) -> StoreArgs:
        out = cast(StoreArgs, {kind: spec.to_wire(self.tables[kind]) for kind, spec in self.specs.items()})
        out["key"] = self.key
        return out

    # -- changes -----------------------------------------------------------------
    async def _update(self, kind: str, change: Callable[[Any], R], deadline: object = None,
                      check: Callable[[Any], object] | None = None) -> R:
        """Apply `change` through the backend, then wait until every child
        holds the new table: an answer of 200 means any front, asked next,
        already sees it (a revoked token is refused everywhere). `check`,
        run on the table held once the lock is taken, refuses (raises)
        before the backend copies the whole table."""
        def in_time(table: Any) -> R:
            # The front gave up at `deadline` (and answered 503): a change
            # made after it would contradict that answer.
            if isinstance(deadline, (int, float)) and time.monotonic() > deadline:
                raise ServiceUnavailable("the store was busy; nothing was changed")
            return change(table)

        async with self._lock:
            before = self.tables[kind]
            if check is not None:
                check(before)
            table, result = await self.backend.update(self.specs[kind], before, in_time)
            self.tables[kind] = table
        if table is not before:
            await self._send({kind})
        return result

    async def _send(self, kinds: set[str]) -> None:
        async with self._send_lock:
            msg = cast(StoreArgs, {k: self.specs[k].to_wire(self.tables[k]) for k in kinds})
            await self._broadcast(msg)

    def _remote_change(self, kind: str, table: Any) -> None:
        """Another node changed a table: send it on (coalesced: the newest only)."""
        if kind not in self.specs:
            return
        self.tables[kind] = table
        self._remote.add(kind)
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.get_running_loop().create_task(self._push(), name="store push")

    async def _push(self) -> None:
        while self._remote:
            kinds, self._remote = self._remote, set()
            await self._send(kinds)

    async def aclose(self) -> None:
        self.hashing.close()
        self.admin_hashing.close()
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)

    # -- requests from the fronts (the supervisor's table, hub.supervisor.links) --------
    def record_rules(self) -> list[dict[str, Any]]:
        return self.record.page()

    async def refresh(self, a: RefreshArgs) -> TokenPair:
        token, tokens = str(a.get("token", "")), self._tokens()
        # Requests with one token that passed the fronts together: the first
        # rotates it; the others are refused here without a copy of the table.
        # A valid token's user is then charged one rotation (a stranger's
        # junk never is: it cannot spend someone's allowance).
        def check(t: UserTable) -> None:
            claims = tokens.verify(token, "refresh", t.token_lookup)
            self.rotations.take(claims.sub, time.monotonic())

        access, refresh = await self._update("users", lambda t: t.refresh(token, tokens), check=check)
        return {"access_token": access, "refresh_token": refresh}

    async def users_upsert(self, a: UsersUpsertArgs) -> str:
        obj = a.get("user")
        if not isinstance(obj, dict):
            raise BadRequest("the body must be a JSON object")
        flag = bool(a.get("update_password"))
        hashed = await _prehash(self.admin_hashing, obj)
        name: str = await self._update("users", lambda t: t.upsert(obj, flag, hashed).name, a.get("deadline"))
        return name

    async def users_delete(self, a: UsersDeleteArgs) -> bool:
        name = str(a.get("name", ""))
        await self._update("users", lambda t: t.delete(name), a.get("deadline"))
        return True

    async def routes_upsert(self, a: RoutesUpsertArgs) -> str:
        obj = a.get("route")
        if not isinstance(obj, dict):
            raise BadRequest("the body must be a JSON object")
        pattern: str = await self._update("routes", lambda t: t.upsert(obj).pattern, a.get("deadline"))
        return pattern

    async def routes_delete(self, a: PatternArgs) -> bool:
        pattern = str(a.get("pattern", ""))
        await self._update("routes", lambda t: t.delete(pattern), a.get("deadline"))
        return True

    async def record_upsert(self, a: RecordUpsertArgs) -> str:
        rule = a.get("rule")
        pattern: str = await self._update("record", lambda t: t.upsert(rule).pattern, a.get("deadline"))
        return pattern

    async def record_delete(self, a: PatternArgs) -> bool:
        pattern = str(a.get("pattern", ""))
        await self._update("record", lambda t: t.delete(pattern), a.get("deadline"))
        return True

    async def login(self, name: str, password: str) -> TokenPair:
        if not name or not password:
            raise Forbidden(LOGIN_FAILED)
        # scrypt takes ~50-80 ms: off the loop, so heartbeats and other requests go on.
        user = await self.hashing.run(self.users.authenticate, name, password)
        if user is None:
            raise Forbidden(LOGIN_FAILED)
        # The right password only (a stranger cannot spend a user's logins);
        # refused before the table is copied.
        self.logins.take(user.name, time.monotonic())
        tokens = self._tokens()
        # A legacy (plain, MD5) hash becomes scrypt: hashed here, not inside the change.
        hashed = await self.hashing.run(hash_for, user.name, password) if needs_rehash(user.password_hash) else None

        def open_login(t: UserTable) -> tuple[str, int, str, int]:
            found = t.get(name)
            if found is None:
                raise Forbidden(LOGIN_FAILED)
            t.upgrade_password(found.name, password, hashed)
            now = tokens.now()
            sid, gen = open_session(found.sessions, found.session_expires, now, now + tokens.refresh_ttl)
            return found.name, gen, sid, found.token_version

        who, gen, sid, uv = await self._update("users", open_login)
        access, refresh = tokens.issue(who, gen, sid, uv)
        return {"access_token": access, "refresh_token": refresh}


async def _prehash(hashing: Workers, obj: dict[str, Any]) -> tuple[str, str] | None:
    """`hash_for` of the password a user object carries, or None; a name or
    password that does not validate is left for `upsert` to refuse."""
    if not isinstance(obj.get("password"), str):
        return None
    try:
        name = validate_name(obj.get("name"))
        pw = validate_password(obj.get("password"))
    except BadRequest:
        return None
    return await hashing.run(hash_for, name, pw)
