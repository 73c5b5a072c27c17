"""The supervisor's store writes: a write still queued at its deadline is
dropped (the front already answered 503), and a burst of user writes hashes
its passwords in parallel, outside the one lock."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_config
from hub.errors import Forbidden, ServiceUnavailable
from hub.store.users import UserTable
from hub.supervisor.stores import Stores


def _stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: list[Any]) -> Stores:
    monkeypatch.setenv("HUB_ADMIN_PASSWORD", "admin")

    async def broadcast(msg: Any) -> None:
        sent.append(msg)

    return Stores(load_config(["--data", str(tmp_path)]), broadcast)


def test_a_write_past_its_deadline_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []
    stores = _stores(tmp_path, monkeypatch, sent)

    async def main() -> None:
        with pytest.raises(ServiceUnavailable):
            await stores.users_upsert({"user": {"name": "late", "password": "pw"},
                                                 "deadline": time.monotonic() - 1})
        with pytest.raises(ServiceUnavailable):
            await stores.routes_upsert({"route": {"pattern": "/late", "url": "rtsp://h/x"},
                                                  "deadline": time.monotonic() - 1})
        assert await stores.users_upsert({"user": {"name": "ontime", "password": "pw"},
                                                     "deadline": time.monotonic() + 10}) == "ontime"

    asyncio.run(main())
    assert stores.users.get("late") is None
    assert stores.users.get("ontime") is not None
    assert "/late" not in stores.routes.to_wire().__repr__()
    assert "late" not in (tmp_path / "users.json").read_text()
    assert len(sent) == 1  # only the write in time was broadcast


def test_password_hashes_run_outside_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held the lock while hashing, 8 writes would take 8 hashes end to end;
    outside it they overlap (hashlib's scrypt releases the GIL)."""
    sent: list[Any] = []
    stores = _stores(tmp_path, monkeypatch, sent)
    inside: list[float] = []
    real_upsert = UserTable.upsert

    def timed_upsert(*args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic()
        try:
            return real_upsert(*args, **kwargs)
        finally:
            inside.append(time.monotonic() - t0)

    # A change runs on a copy of the table (hub.store.backend): time every table's upsert.
    monkeypatch.setattr(UserTable, "upsert", timed_upsert)

    async def main() -> None:
        await asyncio.gather(*(stores.users_upsert({"user": {"name": f"u{i}", "password": f"p{i}"}})
                               for i in range(8)))

    asyncio.run(main())
    assert all(stores.users.get(f"u{i}") is not None for i in range(8))
    # Under the lock only the table update runs: well under one scrypt each.
    from hub.auth.passwords import hash_password
    t0 = time.monotonic()
    hash_password("x")
    one = time.monotonic() - t0
    assert max(inside) < one / 2, (max(inside), one)


def test_refreshes_of_one_token_copy_the_table_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests carrying one refresh token pass the fronts together (their
    copies learn of the rotation only once it is made): the first rotates it,
    the others are refused before the backend copies the whole users table
    for each."""
    from hub.errors import Unauthorized
    from hub.store.backend import FileBackend

    sent: list[Any] = []
    stores = _stores(tmp_path, monkeypatch, sent)
    copies: list[str] = []
    real_update = FileBackend.update

    async def counted_update(self: FileBackend, spec: Any, current: Any, change: Any) -> Any:
        copies.append(spec.kind)
        return await real_update(self, spec, current, change)

    monkeypatch.setattr(FileBackend, "update", counted_update)

    async def main() -> list[Any]:
        pair = await stores.login("admin", "admin")
        copies.clear()
        return await asyncio.gather(*(stores.refresh({"token": pair["refresh_token"]}) for _ in range(20)),
                                    stores.refresh({"token": "junk"}), return_exceptions=True)

    results = asyncio.run(main())
    assert sum(isinstance(r, dict) for r in results) == 1, results
    assert all(isinstance(r, Unauthorized) for r in results if not isinstance(r, dict)), results
    assert copies == ["users"], copies


def test_a_users_valid_refreshes_are_limited_and_a_refused_one_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid refresh token refreshed in a loop rotated its session ~260
    times a second against the real server, each rotation a copy, an fsync'd
    file and a broadcast of the whole users table. A user gets
    ROTATION_BURST rotations, then one every ROTATION_EVERY seconds; the
    refused one (429) copies, writes and sends nothing, and its token stays
    current. Junk and other users' tokens do not spend the allowance."""
    from hub.errors import TooManyRequests, Unauthorized
    from hub.store import sessions

    sent: list[Any] = []
    stores = _stores(tmp_path, monkeypatch, sent)
    users_file = tmp_path / "users.json"

    async def main() -> None:
        await stores.users_upsert({"user": {"name": "other", "password": "pw"}})
        pair = await stores.login("admin", "admin")
        other = await stores.login("other", "pw")
        token = pair["refresh_token"]
        for _ in range(sessions.ROTATION_BURST):
            with pytest.raises(Unauthorized):
                await stores.refresh({"token": "junk"})
            token = (await stores.refresh({"token": token}))["refresh_token"]
        sent.clear()
        before = users_file.read_bytes()
        with pytest.raises(TooManyRequests) as refused:
            await stores.refresh({"token": token})
        assert refused.value.http_status == 429
        assert refused.value.headers == {"Retry-After": str(int(sessions.ROTATION_EVERY))}
        assert sent == [] and users_file.read_bytes() == before
        # Another user is not limited by this one.
        assert (await stores.refresh({"token": other["refresh_token"]}))["refresh_token"]
        # The refused token is still current: it rotates once a slot refills.
        real = time.monotonic
        monkeypatch.setattr(time, "monotonic", lambda: real() + sessions.ROTATION_EVERY)
        assert (await stores.refresh({"token": token}))["refresh_token"]

    asyncio.run(main())


def test_a_users_logins_are_limited_and_a_refused_one_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each login with the right password opens a session: a copy, an
    fsync'd file and a broadcast of the users table; a user's logins in a
    loop did that ~30 times a second (the two scrypt workers' pace). Now
    LOGIN_BURST, then one every ROTATION_EVERY seconds; the refused one
    (429) writes and sends nothing. Wrong passwords spend nothing of it
    (a stranger cannot lock a user out), and other users are not limited."""
    from hub.errors import TooManyRequests
    from hub.store import sessions

    sent: list[Any] = []
    stores = _stores(tmp_path, monkeypatch, sent)
    stores.logins = sessions.RotationLimit(burst=3)  # the bound's wiring; its size below
    users_file = tmp_path / "users.json"

    async def main() -> None:
        await stores.users_upsert({"user": {"name": "other", "password": "pw"}})
        for _ in range(3):
            with pytest.raises(Forbidden):
                await stores.login("admin", "wrong")
            await stores.login("admin", "admin")
        sent.clear()
        before = users_file.read_bytes()
        with pytest.raises(TooManyRequests):
            await stores.login("admin", "admin")
        assert sent == [] and users_file.read_bytes() == before
        assert (await stores.login("other", "pw"))["access_token"]
        real = time.monotonic
        monkeypatch.setattr(time, "monotonic", lambda: real() + sessions.ROTATION_EVERY)
        assert (await stores.login("admin", "admin"))["access_token"]

    asyncio.run(main())
    assert sessions.LOGIN_BURST >= 16, "scripts logging in before each call must not meet it"


def test_the_rotation_limit_refills_and_forgets_only_full_buckets() -> None:
    from hub.errors import TooManyRequests
    from hub.store.sessions import ROTATION_USERS, RotationLimit

    limit = RotationLimit(burst=2, every=10.0)
    limit.take("a", 0.0)
    limit.take("a", 0.0)
    with pytest.raises(TooManyRequests):
        limit.take("a", 5.0)
    limit.take("a", 10.0)
    with pytest.raises(TooManyRequests):
        limit.take("a", 10.0)
    limit = RotationLimit(burst=2, every=10.0)
    for i in range(ROTATION_USERS):
        limit.take(f"u{i}", 100.0)  # each left with one of two
    limit.take("late", 105.0)  # past the bound: none full yet, none forgotten
    assert len(limit._users) == ROTATION_USERS + 1
    limit.take("later", 200.0)  # every earlier one refilled: forgotten
    assert set(limit._users) == {"later"}


def _filled(upsert: Any, make: Any, wire: Any, cap: int) -> int:
    """Upsert `make(i)` until the table refuses one (BadRequest) or its wire
    form alone outgrows an IPC frame; how many it took."""
    from hub.errors import BadRequest
    from hub.ipc.codec import MAX_FRAME, encode_body

    for i in range(cap):
        try:
            upsert(make(i))
        except BadRequest:
            return i
        if i % 250 == 249 and len(encode_body(wire())) > MAX_FRAME:
            return i + 1
    return cap


def test_the_largest_tables_the_api_takes_reach_the_children(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Each table travels to every child as one IPC frame (16 MiB at most), in
    a change and in the snapshot a (re)started child asks for. Users and routes
    had no count bound: ~1,700 users with full-length rights and their 64
    sessions, or ~5,400 routes with long URLs, did not fit any more; the
    supervisor stored each change, answered 200, and the children never got
    it (the broadcast's error is only logged), nor could a restarted child
    get its stores. Every bound together must keep the snapshot in a frame."""
    from hub.ipc import messages as M
    from hub.errors import ProtocolError
    from hub.ipc.codec import encode_frame
    from hub.ipc.envelope import request
    from hub.store import recordings, routes as routes_module, users as users_module
    from hub.store.recordings import PATTERN_MAX as RULE_PATTERN_MAX
    from hub.store.routes import PATTERN_MAX as ROUTE_PATTERN_MAX, URL_MAX
    from hub.store.sessions import MAX_SESSIONS, open_session
    from hub.store.users import NAME_MAX, hash_for

    # Without a bound (the defect) the tables fill until they no longer fit.
    MAX_USERS = getattr(users_module, "MAX_USERS", None)
    MAX_ROUTES = getattr(routes_module, "MAX_ROUTES", None)
    MAX_RULES = recordings.MAX_RULES

    stores = _stores(tmp_path, monkeypatch, [])
    users, routes, record = stores.users, stores.routes, stores.record
    masks = [f"/{'r' * 12}{i:03d}/*" for i in range(300)]
    rights = ";".join(masks)
    while len(rights) > 4096:
        masks.pop()
        rights = ";".join(masks)
    hashed = hash_for("x", "x")

    def user(i: int) -> dict[str, Any]:
        return {"name": f"{i:06d}".rjust(NAME_MAX, "u"), "password": "x", "push": rights, "pull": rights}

    n_users = _filled(lambda obj: users.upsert(obj, hashed=hashed), user, users.to_wire, 3000)
    for u in list(users):
        for _ in range(MAX_SESSIONS):
            open_session(u.sessions, u.session_expires, 0, 2_000_000_000)

    def route(i: int) -> dict[str, Any]:
        return {"pattern": f"/{i:06d}".ljust(ROUTE_PATTERN_MAX, "p"),
                "url": "rtsp://user:password@camera/".ljust(URL_MAX - 6, "x") + f"{i:06d}"}

    n_routes = _filled(routes.upsert, route, routes.to_wire, 8000)

    def rule(i: int) -> dict[str, Any]:
        return {"pattern": f"/{i:06d}".ljust(RULE_PATTERN_MAX, "p"), "retention": {"max_bytes": "1t"}}

    n_rules = _filled(record.upsert, rule, record.to_wire, 2000)
    try:
        encode_frame(request(1, M.STORE_CHANGED.name, stores.snapshot()))
    except ProtocolError as e:
        raise AssertionError(f"{n_users} users, {n_routes} routes, {n_rules} rules: {e}") from None
    # A refused one changed nothing: the bounds are what the tables hold
    # (the longest routes stop at their bytes' bound, before their count's).
    held = (len(users), len(routes), len(record.to_wire()["rules"]))
    assert held[0] == MAX_USERS and held[2] == MAX_RULES, (held, n_users, n_routes, n_rules)
    assert MAX_ROUTES is not None and 900 <= held[1] < MAX_ROUTES, (held, n_users, n_routes, n_rules)
