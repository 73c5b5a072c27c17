"""Users, routes and the token key, owned by the supervisor.

Every change is written at once and atomically (write, fsync, rename) before
the API answers, then broadcast to every child, which keeps a read-only
copy for auth checks and route matching. Changes are serialised by one lock,
so 50 writers at once cannot interleave a load-modify-save.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable

from ..auth.tokens import TokenService, load_or_create_key
from ..config import Config
from ..errors import BadRequest, Forbidden, ServiceUnavailable
from ..store.persist import atomic_write_json
from ..store.recordings import FILE_NAME as RECORD_RULES_FILE, RecordTable, rule_from_obj
from ..store.routes import RouteTable
from ..store.sessions import open_session
from ..store.users import first_start, hash_for, validate_name, validate_password

log = logging.getLogger("hub.supervisor.stores")

KEY_FILE = "token.key"
ADMIN_PASSWORD_FILE = "admin.password"
LOGIN_FAILED = "用户名或密码错误"  # the reference's message: wrong name or password


class Stores:
    def __init__(self, config: Config,
                 broadcast: Callable[[str, dict[str, Any]], Awaitable[Any]]) -> None:
        self.config = config
        self._broadcast = broadcast
        self._lock = asyncio.Lock()
        data = config.data
        os.makedirs(data, exist_ok=True)
        self.users_path = str(config.data_path(config.users_file))
        self.routes_path = str(config.data_path(config.routetable_file))
        self.users, generated = first_start(data, os.environ.get("HUB_ADMIN_PASSWORD"), config.users_file)
        if generated is not None:
            atomic_write_json(os.path.join(data, ADMIN_PASSWORD_FILE), {"admin": generated}, mode=0o600)
            log.warning("first start: created user 'admin' with password %s (also in %s/%s)",
                        generated, data, ADMIN_PASSWORD_FILE)
        for what in self.users.skipped:
            log.warning("users file: skipped %s", what)
        if self.users.migrated:
            self.users.save(self.users_path)
        self.routes = RouteTable.load(self.routes_path) if os.path.exists(self.routes_path) else RouteTable()
        for what in self.routes.skipped:
            log.warning("route table: skipped %s", what)
        self.record_path = str(config.data_path(RECORD_RULES_FILE))
        self.record = RecordTable.load(self.record_path, (rule_from_obj(r, "config") for r in config.record))
        for what in self.record.skipped:
            log.warning("recording rules: skipped %s", what)
        self.key = load_or_create_key(os.path.join(data, KEY_FILE))
        self.tokens = TokenService(self.key)

    def snapshot(self) -> dict[str, Any]:
        return {"users": self.users.to_wire(), "routes": self.routes.to_wire(), "key": self.key,
                "record": self.record.to_wire()}

    async def _changed(self, users: bool = False, routes: bool = False, record: bool = False) -> None:
        """Persist, then wait until every child holds the change: an answer
        of 200 means any front, asked next, already sees it (a revoked token
        is refused everywhere)."""
        msg: dict[str, Any] = {}
        if users:
            self.users.save(self.users_path)
            msg["users"] = self.users.to_wire()
        if routes:
            self.routes.save(self.routes_path)
            msg["routes"] = self.routes.to_wire()
        if record:
            self.record.save(self.record_path)
            msg["record"] = self.record.to_wire()
        await self._broadcast("store_changed", msg)

    # -- requests from the fronts ------------------------------------------------
    async def handle(self, method: str, a: dict[str, Any]) -> Any:
        if method == "login":
            return await self.login(str(a.get("username", "")), str(a.get("password", "")))
        # A new password's scrypt runs before the lock, in a thread: writes
        # queue behind one another for the file and the broadcast only.
        hashed = await _prehash(a) if method == "users_upsert" else None
        async with self._lock:
            # The front gave up at `deadline` (and answered 503): a change
            # made after it would contradict that answer.
            deadline = a.get("deadline")
            if isinstance(deadline, (int, float)) and time.monotonic() > deadline:
                raise ServiceUnavailable("the store was busy; nothing was changed")
            if method == "refresh":
                access, refresh = self.users.refresh(str(a.get("token", "")), self.tokens)
                await self._changed(users=True)
                return {"access_token": access, "refresh_token": refresh}
            if method == "users_upsert":
                obj = a.get("user")
                if not isinstance(obj, dict):
                    raise BadRequest("the body must be a JSON object")
                user = await asyncio.to_thread(self.users.upsert, obj, bool(a.get("update_password")), hashed)
                await self._changed(users=True)
                return user.name
            if method == "users_delete":
                if self.users.delete(str(a.get("name", ""))):
                    await self._changed(users=True)
                return True
            if method == "routes_upsert":
                obj = a.get("route")
                if not isinstance(obj, dict):
                    raise BadRequest("the body must be a JSON object")
                route = self.routes.upsert(obj)
                await self._changed(routes=True)
                return route.pattern
            if method == "routes_delete":
                if self.routes.delete(str(a.get("pattern", ""))):
                    await self._changed(routes=True)
                return True
            if method == "record_rules":
                return self.record.page()
            if method == "record_upsert":
                rule = self.record.upsert(a.get("rule"))
                await self._changed(record=True)
                return rule.pattern
            if method == "record_delete":
                if self.record.delete(str(a.get("pattern", ""))):
                    await self._changed(record=True)
                return True
        raise BadRequest(f"unknown store method {method!r}")

    async def login(self, name: str, password: str) -> dict[str, str]:
        if not name or not password:
            raise Forbidden(LOGIN_FAILED)
        # scrypt takes ~80 ms: off the loop, so heartbeats and other requests go on.
        user = await asyncio.to_thread(self.users.authenticate, name, password)
        if user is None:
            raise Forbidden(LOGIN_FAILED)
        async with self._lock:
            user = self.users.get(name)
            if user is None:
                raise Forbidden(LOGIN_FAILED)
            await asyncio.to_thread(self.users.upgrade_password, user.name, password)
            now = self.tokens.now()
            sid, gen = open_session(user.sessions, user.session_expires, now, now + self.tokens.refresh_ttl)
            access, refresh = self.tokens.issue(user.name, gen, sid, user.token_version)
            await self._changed(users=True)
        return {"access_token": access, "refresh_token": refresh}


async def _prehash(a: dict[str, Any]) -> tuple[str, str] | None:
    """`hash_for` of the password a users_upsert carries, or None; a name or
    password that does not validate is left for `upsert` to refuse."""
    obj = a.get("user")
    if not isinstance(obj, dict) or not isinstance(obj.get("password"), str):
        return None
    try:
        name = validate_name(obj.get("name"))
        pw = validate_password(obj.get("password"))
    except BadRequest:
        return None
    return await asyncio.to_thread(hash_for, name, pw)
