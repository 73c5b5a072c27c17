from __future__ import annotations

import base64
import json
import os
import stat
from typing import Mapping

import jwt
import msgpack
import pytest

from hub.auth.tokens import KEY_BYTES, TokenService, generate_key, load_or_create_key
from hub.errors import HubError, Unauthorized
from hub.store import sessions as session_book
from hub.store.users import UserTable

KEY = bytes(range(32))
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(clock: Clock) -> TokenService:
    return TokenService(KEY, now=clock)


def fixed_lookup(uv: int, sessions: Mapping[str, int]):  # type: ignore[no-untyped-def]
    return lambda user: (uv, sessions) if user == "alice" else None


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def test_issue_claims_and_verify(svc: TokenService) -> None:
    access, refresh = svc.issue("alice", 3, "sid1", uv=2)
    assert _header(access)["alg"] == "HS256"
    assert _payload(access) == {"sub": "alice", "typ": "access", "sid": "sid1", "gen": 3, "uv": 2,
                                "iat": 1_700_000_000, "exp": 1_700_007_200}
    assert _payload(refresh)["exp"] == 1_700_000_000 + 7 * 86400
    assert _payload(refresh)["typ"] == "refresh"
    c = svc.verify(access, "access", fixed_lookup(2, {"sid1": 3}))
    assert (c.sub, c.typ, c.sid, c.gen, c.uv) == ("alice", "access", "sid1", 3, 2)
    assert svc.verify(refresh, "refresh", fixed_lookup(2, {"sid1": 3})).typ == "refresh"


def test_expiry_with_injected_clock(svc: TokenService, clock: Clock) -> None:
    access, refresh = svc.issue("alice", 1, "s", uv=0)
    look = fixed_lookup(0, {"s": 1})
    clock.t = T0 + 7199
    svc.verify(access, "access", look)
    clock.t = T0 + 7200
    with pytest.raises(Unauthorized, match="Token is not valid"):
        svc.verify(access, "access", look)
    clock.t = T0 + 7 * 86400 - 1
    svc.verify(refresh, "refresh", look)
    clock.t = T0 + 7 * 86400
    with pytest.raises(Unauthorized):
        svc.verify(refresh, "refresh", look)


def test_wrong_type(svc: TokenService) -> None:
    access, refresh = svc.issue("alice", 1, "s")
    look = fixed_lookup(0, {"s": 1})
    with pytest.raises(Unauthorized):
        svc.verify(access, "refresh", look)
    with pytest.raises(Unauthorized):
        svc.verify(refresh, "access", look)


def test_tampering_and_garbage(svc: TokenService) -> None:
    access, _ = svc.issue("alice", 1, "s")
    look = fixed_lookup(0, {"s": 1})
    head, body, sig = access.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    forged_body = base64.urlsafe_b64encode(json.dumps(
        {**_payload(access), "sub": "alice", "uv": 9}).encode()).decode().rstrip("=")
    other_key = jwt.encode(_payload(access), b"k" * 32, algorithm="HS256")
    unsigned = jwt.encode(_payload(access), None, algorithm="none")
    for bad in (f"{head}.{body}.{flipped}", f"{head}.{forged_body}.{sig}", other_key, unsigned,
                "", "bogus", "a.b.c", "de3b0452c49cec11906c652cb8162c04", "x" * 5000):
        with pytest.raises(Unauthorized, match="Token is not valid"):
            svc.verify(bad, "access", look)


def test_wrong_claim_types_rejected(svc: TokenService) -> None:
    base = {"sub": "alice", "typ": "access", "sid": "s", "gen": 1, "uv": 0,
            "iat": int(T0), "exp": int(T0) + 60}
    look = fixed_lookup(0, {"s": 1})
    for key, value in (("gen", "1"), ("gen", True), ("sub", 5), ("exp", None)):
        tok = jwt.encode({**base, key: value}, KEY, algorithm="HS256")
        with pytest.raises(Unauthorized):
            svc.verify(tok, "access", look)
    tok = jwt.encode({k: v for k, v in base.items() if k != "sid"}, KEY, algorithm="HS256")
    with pytest.raises(Unauthorized):
        svc.verify(tok, "access", look)


def test_revocation_by_lookup(svc: TokenService) -> None:
    access, _ = svc.issue("alice", 1, "s", uv=0)
    with pytest.raises(Unauthorized):
        svc.verify(access, "access", fixed_lookup(1, {"s": 1}))   # token version bumped
    with pytest.raises(Unauthorized):
        svc.verify(access, "access", fixed_lookup(0, {"s": 2}))   # session rotated
    with pytest.raises(Unauthorized):
        svc.verify(access, "access", fixed_lookup(0, {}))         # session dropped
    with pytest.raises(Unauthorized):
        svc.verify(access, "access", lambda user: None)           # user deleted


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> UserTable:
    # Cheap scrypt cost: these tests log in dozens of times; test_passwords
    # covers the real parameters.
    monkeypatch.setattr("hub.auth.passwords.SCRYPT_N", 2**8)
    t = UserTable()
    t.upsert({"name": "admin", "password": "admin", "admin": True})
    t.upsert({"name": "user1", "password": "pw1", "push": "/live/*", "pull": "/live/single"})
    return t


def test_login_refresh_rotation_kills_old_pair(table: UserTable, svc: TokenService) -> None:
    assert table.login("admin", "wrong", svc) is None
    assert table.login("nobody", "x", svc) is None
    got = table.login("ADMIN", "admin", svc)
    assert got is not None
    user, access, refresh = got
    assert user.name == "admin"
    assert svc.verify(access, "access", table.token_lookup).sub == "admin"
    new_access, new_refresh = table.refresh(refresh, svc)
    svc.verify(new_access, "access", table.token_lookup)
    with pytest.raises(Unauthorized):
        svc.verify(access, "access", table.token_lookup)          # transcript #18
    with pytest.raises(Unauthorized):
        table.refresh(refresh, svc)                               # transcript #17
    with pytest.raises(Unauthorized):
        table.refresh(new_access, svc)                            # transcript #19
    a3, r3 = table.refresh(new_refresh, svc)
    svc.verify(a3, "access", table.token_lookup)


def test_two_sessions_are_independent(table: UserTable, svc: TokenService) -> None:
    one = table.login("user1", "pw1", svc)
    two = table.login("user1", "pw1", svc)
    assert one is not None and two is not None
    table.refresh(one[2], svc)
    svc.verify(two[1], "access", table.token_lookup)
    assert table.logout("user1", _payload(two[1])["sid"])  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        svc.verify(two[1], "access", table.token_lookup)


def test_password_change_and_delete_kill_all(table: UserTable, svc: TokenService) -> None:
    a = table.login("user1", "pw1", svc)
    b = table.login("user1", "pw1", svc)
    adm = table.login("admin", "admin", svc)
    assert a and b and adm
    # an update without update_password keeps tokens alive
    table.upsert({"name": "user1", "password": "pw2", "push": "/live/*"})
    svc.verify(a[1], "access", table.token_lookup)
    table.upsert({"name": "user1", "password": "pw2"}, update_password=True)
    for tok, typ in ((a[1], "access"), (b[1], "access"), (a[2], "refresh")):
        with pytest.raises(Unauthorized):
            svc.verify(tok, typ, table.token_lookup)  # type: ignore[arg-type]
    svc.verify(adm[1], "access", table.token_lookup)
    # The last admin cannot be deleted (issue 12 #10): make another first.
    table.upsert({"name": "root", "password": "pw3", "admin": True})
    table.delete("admin")
    with pytest.raises(Unauthorized):
        svc.verify(adm[1], "access", table.token_lookup)
    with pytest.raises(Unauthorized):
        table.refresh(adm[2], svc)


def test_rotation_seen_by_another_process_copy(table: UserTable, svc: TokenService) -> None:
    got = table.login("admin", "admin", svc)
    assert got
    _, access, refresh = got
    copy = UserTable.from_wire(msgpack.unpackb(msgpack.packb(table.to_wire())))
    svc.verify(access, "access", copy.token_lookup)
    table.refresh(refresh, svc)
    svc.verify(access, "access", copy.token_lookup)  # stale copy still accepts
    copy = UserTable.from_wire(msgpack.unpackb(msgpack.packb(table.to_wire())))
    with pytest.raises(Unauthorized):
        svc.verify(access, "access", copy.token_lookup)


def test_sessions_bounded_and_expired_dropped(table: UserTable, svc: TokenService, clock: Clock) -> None:
    first = table.login("user1", "pw1", svc)
    assert first
    for _ in range(session_book.MAX_SESSIONS + 5):
        clock.t += 1
        assert table.login("user1", "pw1", svc)
    user = table.get("user1")
    assert user is not None
    assert len(user.sessions) == len(user.session_expires) == session_book.MAX_SESSIONS
    with pytest.raises(Unauthorized):               # the oldest session was dropped
        svc.verify(first[1], "access", table.token_lookup)
    clock.t += 8 * 86400
    assert table.login("user1", "pw1", svc)
    assert len(user.sessions) == 1


def test_rotate_needs_live_session() -> None:
    gens, exp = {"s": 2}, {"s": 100}
    assert session_book.rotate_session(gens, exp, "s", 1, 50, 200) is None
    assert session_book.rotate_session(gens, exp, "s", 2, 100, 200) is None   # expired
    assert session_book.rotate_session(gens, exp, "s", 2, 99, 200) == 3
    assert gens == {"s": 3} and exp == {"s": 200}


def test_short_key_refused() -> None:
    with pytest.raises(ValueError):
        TokenService(b"short")
    assert len(generate_key()) == KEY_BYTES and generate_key() != generate_key()


def test_load_or_create_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "keys" / "token.key")
    k1 = load_or_create_key(path)
    assert len(k1) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(path) == k1
    assert os.listdir(tmp_path / "keys") == ["token.key"]
    short = tmp_path / "short.key"
    short.write_bytes(b"abc")
    with pytest.raises(HubError):
        load_or_create_key(str(short))


def test_checked_token_cache_is_bounded(svc: TokenService) -> None:
    from hub.auth import tokens as mod
    look = fixed_lookup(0, {"s": 1})
    first = svc.issue("alice", 1, "s")[0]
    svc.verify(first, "access", look)
    for i in range(mod.CACHE_SIZE + 3):
        jwt_tok = jwt.encode({"sub": "alice", "typ": "access", "sid": "s", "gen": 1, "uv": 0,
                              "iat": int(T0), "exp": int(T0) + 60 + i}, KEY, algorithm="HS256")
        svc.verify(jwt_tok, "access", look)
    assert len(svc._cache) == mod.CACHE_SIZE
    assert first not in svc._cache
    svc.verify(first, "access", look)   # evicted tokens are simply checked again
