"""The users table: what users.json holds, validation, paging, sessions.

The supervisor owns the table, persists every change at once and broadcasts
`to_wire()`; every other process rebuilds a read-only copy with `from_wire()`
and checks passwords, rights and tokens against it locally.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping

from ..auth.passwords import REALM, digest_ha1, hash_password, is_md5_hex, needs_rehash, verify_password
from ..auth.rights import RightsPattern, effective_rights
from ..auth.tokens import INVALID, TokenService
from ..errors import BadRequest, NotFound, Unauthorized
from .paging import DEFAULT_PAGE_SIZE, page_keys
from .persist import StoreFileError, atomic_write_json, load_json
from .sessions import close_session, open_session, rotate_session

NAME_MAX = 64
PASSWORD_MAX = 1024
#: Users in all. The table travels to every child as one IPC frame (16 MiB):
#: 1000 users with full-length rights and 64 sessions each are ~10 MB, which
#: leaves room for the routes and recording rules of a snapshot beside them.
MAX_USERS = 1000
WIRE_VERSION = 1
ADMIN_NAME = "admin"
#: The cluster's relay credential (hub.cluster): nodes pull each other's
#: streams as this user, whose password is the cluster's secret. `%` is
#: refused in real names, so no user can be it.
RELAY_USER = "%relay"
# Characters that would break a REST path, a Basic header or a Digest quote.
_NAME_FORBIDDEN = frozenset(':"\\/?#%;')
# Whole names a URL path segment cannot carry: clients remove dot segments
# (RFC 3986 5.2.4), so `/api/v1/users/..` never reaches the user `..`.
_DOT_SEGMENTS = frozenset((".", ".."))
LAST_ADMIN_DEMOTE = "the last admin keeps the admin right: make another user admin first"
LAST_ADMIN_DELETE = "the last admin cannot be deleted: make another user admin first"


def canonical_name(name: str) -> str:
    """User names are trimmed and lower-cased everywhere, as the reference does."""
    return name.strip().lower()


def validate_name(raw: object) -> str:
    if not isinstance(raw, str):
        raise BadRequest("user name must be a string")
    name = canonical_name(raw)
    if not name:
        raise BadRequest("user name must not be empty")
    if len(name) > NAME_MAX:
        raise BadRequest(f"user name longer than {NAME_MAX} characters")
    if not name.isprintable() or any(c.isspace() or c in _NAME_FORBIDDEN for c in name):
        raise BadRequest(f"user name {raw!r} may not contain spaces, control characters or any of :\"\\/?#%;")
    if name in _DOT_SEGMENTS:
        raise BadRequest(f"user name {raw!r} cannot be a URL path segment")
    return name


def validate_password(raw: object) -> str:
    if not isinstance(raw, str) or raw == "":
        raise BadRequest("password must not be empty")
    if len(raw) > PASSWORD_MAX:
        raise BadRequest(f"password longer than {PASSWORD_MAX} characters")
    return raw


def hash_for(name: str, pw: str) -> tuple[str, str]:
    """(scrypt hash, Digest HA1) of a password for the user `name`
    (canonical): the slow part of setting a password, which callers may
    run before taking a lock and hand to `upsert`."""
    return hash_password(pw), digest_ha1(name, REALM, pw)


def _rights_field(obj: Mapping[str, Any], key: str, compile: bool = True) -> str:
    """The trimmed pattern; compiled to check it unless the caller builds
    the User at once (which compiles it and raises the same BadRequest)."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string of rights masks")
    text = value.strip()
    if compile:
        RightsPattern.compile(text)
    return text


def _bool_field(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false")
    return value


@dataclass(eq=False)
class User:
    """One user. `password_hash` is scrypt (or a legacy MD5 hex from an old file,
    upgraded at the next successful login); `ha1` is the RTSP Digest secret."""

    name: str
    password_hash: str
    ha1: str = ""
    admin: bool = False
    push: str = ""
    pull: str = ""
    token_version: int = 0
    sessions: dict[str, int] = field(default_factory=dict)          # sid -> generation
    session_expires: dict[str, int] = field(default_factory=dict)   # sid -> unix time
    push_rights: RightsPattern = field(init=False, repr=False)
    pull_rights: RightsPattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.push = effective_rights(self.push, self.admin)
        self.pull = effective_rights(self.pull, self.admin)
        self.push_rights = RightsPattern.compile(self.push)
        self.pull_rights = RightsPattern.compile(self.pull)

    def can_push(self, path: str) -> bool:
        return self.push_rights.match(path)

    def can_pull(self, path: str) -> bool:
        return self.pull_rights.match(path)

    def set_password(self, pw: str, hashed: tuple[str, str] | None = None) -> None:
        """New hash and HA1 (`hashed`: `hash_for(name, pw)` already made);
        bumping the token version revokes every token."""
        self.password_hash, self.ha1 = hashed or hash_for(self.name, pw)
        self.token_version += 1
        self.sessions.clear()
        self.session_expires.clear()

    def to_file(self) -> dict[str, Any]:
        return {"name": self.name, "password_hash": self.password_hash, "ha1": self.ha1,
                "admin": self.admin, "push": self.push, "pull": self.pull,
                "token_version": self.token_version,
                "sessions": {sid: [gen, self.session_expires.get(sid, 0)]
                             for sid, gen in self.sessions.items()}}


def public_dict(user: User) -> dict[str, Any]:
    """What the API shows: no password; `admin` only when true, `push`/`pull`
    only when set (the reference's omitempty)."""
    out: dict[str, Any] = {"name": user.name}
    if user.admin:
        out["admin"] = True
    if user.push:
        out["push"] = user.push
    if user.pull:
        out["pull"] = user.pull
    return out


def _user_from_file(obj: object) -> tuple[User, bool]:
    """One entry of users.json in our format or the reference's; the flag says
    whether it came in a legacy form that should be saved back as ours."""
    if not isinstance(obj, dict):
        raise BadRequest("each user must be a JSON object")
    name = validate_name(obj.get("name"))
    admin = _bool_field(obj, "admin")
    # Every change copies the table through this (hub.store.backend): each
    # pattern is compiled once, by User.
    push, pull = _rights_field(obj, "push", False), _rights_field(obj, "pull", False)
    if "password_hash" in obj:
        pw_hash, ha1 = obj.get("password_hash"), obj.get("ha1", "")
        uv, raw_sessions = obj.get("token_version", 0), obj.get("sessions") or {}
        if not isinstance(pw_hash, str) or not pw_hash or not isinstance(ha1, str):
            raise BadRequest(f"user {name!r}: password_hash and ha1 must be strings")
        if not isinstance(uv, int) or isinstance(uv, bool) or not isinstance(raw_sessions, dict):
            raise BadRequest(f"user {name!r}: bad token_version or sessions")
        user = User(name, pw_hash, ha1, admin, push, pull, uv)
        for sid, val in raw_sessions.items():
            if (isinstance(val, list) and len(val) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in val)):
                user.sessions[str(sid)] = val[0]
                user.session_expires[str(sid)] = val[1]
        return user, False
    pw = obj.get("password")
    if not isinstance(pw, str) or pw == "":
        raise BadRequest(f"user {name!r} has no password")
    if is_md5_hex(pw):
        # The reference's MD5 mode: the plain password is unknown, so no HA1
        # until the user logs in once and the hash is upgraded.
        return User(name, pw.lower(), "", admin, push, pull), True
    return User(name, hash_password(pw), digest_ha1(name, REALM, pw), admin, push, pull), True


class UserTable:
    """Users by canonical name; not thread-safe (one owner per process)."""

    def __init__(self, users: Iterable[User] = ()) -> None:
        self._users: dict[str, User] = {u.name: u for u in users}
        #: Users that only `get` finds (the cluster's relay user in a front's
        #: copy): never listed, stored, sent, nor given tokens.
        self._internal: dict[str, User] = {}
        self.revision = 0
        self.migrated = False   # loaded legacy entries: save to store them as ours
        self.skipped: list[str] = []   # entries of a loaded file that were invalid

    def __len__(self) -> int:
        return len(self._users)

    def __iter__(self) -> Iterator[User]:
        return iter(sorted(self._users.values(), key=lambda u: u.name))

    def _changed(self) -> None:
        self.revision += 1

    # -- files ---------------------------------------------------------------

    @classmethod
    def from_file_list(cls, data: object) -> UserTable:
        if not isinstance(data, list):
            raise BadRequest("users file must hold a JSON array of users")
        table = cls()
        for i, obj in enumerate(data):
            try:
                user, legacy = _user_from_file(obj)
            except BadRequest as e:
                # The reference accepted anything (even a user named ""); one
                # bad entry must not stop the server, so skip it and say so.
                table.skipped.append(f"user #{i}: {e.message}")
                continue
            table._users[user.name] = user
            table.migrated |= legacy
        return table

    @classmethod
    def load(cls, path: str) -> UserTable:
        """users.json in the reference's format (plain or MD5 passwords) or ours;
        a missing file is an empty table."""
        data = load_json(path, [])
        try:
            return cls.from_file_list(data)
        except BadRequest as e:
            raise StoreFileError(f"{path}: {e.message}") from None

    def to_file_list(self) -> list[dict[str, Any]]:
        return [u.to_file() for u in self]

    def save(self, path: str) -> None:
        """Our format, never a plain password, atomically, mode 0600."""
        atomic_write_json(path, self.to_file_list(), mode=0o600)
        self.migrated = False

    # -- CRUD ----------------------------------------------------------------

    def get(self, name: str) -> User | None:
        name = canonical_name(name)
        user = self._users.get(name)
        return user if user is not None or not self._internal else self._internal.get(name)

    def add_internal(self, user: User) -> None:
        """A user for credential checks only (see `_internal`); its name must
        be one no real user can have (`validate_name` refuses it)."""
        self._internal[user.name] = user

    def get_public(self, name: str) -> dict[str, Any]:
        user = self._users.get(canonical_name(name))
        if user is None:
            raise NotFound(f"user {canonical_name(name)!r} not found")
        return public_dict(user)

    def upsert(self, obj: Mapping[str, Any], update_password: bool = False,
               hashed: tuple[str, str] | None = None) -> User:
        """Create a user, or update one's admin flag and rights; the password of
        an existing user changes only with `update_password` (which revokes the
        user's tokens). Validates everything before changing anything.
        `hashed` is `hash_for(name, password)` when the caller made it already."""
        if not isinstance(obj, Mapping):
            raise BadRequest("a user must be a JSON object")
        name = validate_name(obj.get("name"))
        admin = _bool_field(obj, "admin")
        push, pull = _rights_field(obj, "push"), _rights_field(obj, "pull")
        old = self._users.get(name)
        if old is None and len(self._users) >= MAX_USERS:
            raise BadRequest(f"at most {MAX_USERS} users")
        if old is not None and old.admin and not admin and self._is_last_admin(old):
            raise BadRequest(LAST_ADMIN_DEMOTE)
        if old is None or update_password:
            pw: str | None = validate_password(obj.get("password"))
        else:
            pw = None
        if old is None:
            assert pw is not None
            password_hash, ha1 = hashed or hash_for(name, pw)
            user = User(name, password_hash, ha1, admin, push, pull)
        else:
            user = User(name, old.password_hash, old.ha1, admin, push, pull,
                        old.token_version, old.sessions, old.session_expires)
            if pw is not None:
                user.set_password(pw, hashed)
        self._users[name] = user
        self._changed()
        return user

    def delete(self, name: str) -> bool:
        """Remove a user (no error when missing); their tokens die with them
        because the token lookup no longer finds the user. The last admin
        stays (BadRequest): nobody locks the operator out by accident."""
        user = self._users.get(canonical_name(name))
        if user is None:
            return False
        if user.admin and self._is_last_admin(user):
            raise BadRequest(LAST_ADMIN_DELETE)
        del self._users[user.name]
        self._changed()
        return True

    def _is_last_admin(self, user: User) -> bool:
        return not any(u.admin and u is not user for u in self._users.values())

    def page(self, page_size: int = DEFAULT_PAGE_SIZE,
             page_token: str = "") -> tuple[int, str, list[dict[str, Any]]]:
        """(total, next_page_token, public users) as the reference pages: sorted
        by name, names after `page_token`, the token echoed on an empty page."""
        total, token, names = page_keys(self._users, page_size, page_token)
        return total, token, [public_dict(self._users[n]) for n in names]

    # -- passwords -----------------------------------------------------------

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is right; None for a wrong one or an
        unknown user (a hash is still computed so timing does not tell)."""
        user = self.get(name)
        if user is None:
            verify_password(_dummy_hash(), password)
            return None
        return user if verify_password(user.password_hash, password) else None

    def upgrade_password(self, name: str, password: str, hashed: tuple[str, str] | None = None) -> bool:
        """After a successful login: replace a legacy (plain/MD5) hash with
        scrypt and fill the HA1, without revoking tokens. True if changed.
        `hashed`: `hash_for(name, password)` when the caller made it already."""
        user = self.get(name)
        if user is None or not needs_rehash(user.password_hash):
            return False
        if not verify_password(user.password_hash, password):
            return False
        user.password_hash, user.ha1 = hashed or hash_for(user.name, password)
        self._changed()
        return True

    # -- tokens --------------------------------------------------------------

    def token_lookup(self, name: str) -> tuple[int, Mapping[str, int]] | None:
        """What TokenService.verify needs: (token version, sid -> generation)."""
        user = self._users.get(name)
        return None if user is None else (user.token_version, user.sessions)

    def login(self, name: str, password: str, tokens: TokenService) -> tuple[User, str, str] | None:
        """Check the password, open a login session, issue its first pair."""
        user = self.authenticate(name, password)
        if user is None:
            return None
        if needs_rehash(user.password_hash):
            self.upgrade_password(user.name, password)
        now = tokens.now()
        sid, gen = open_session(user.sessions, user.session_expires, now, now + tokens.refresh_ttl)
        self._changed()
        access, refresh = tokens.issue(user.name, gen, sid, user.token_version)
        return user, access, refresh

    def refresh(self, refresh_token: str, tokens: TokenService) -> tuple[str, str]:
        """Rotate a login session: the presented refresh token must carry the
        current generation; the old access and refresh tokens die."""
        claims = tokens.verify(refresh_token, "refresh", self.token_lookup)
        user = self._users[claims.sub]
        now = tokens.now()
        gen = rotate_session(user.sessions, user.session_expires, claims.sid, claims.gen,
                             now, now + tokens.refresh_ttl)
        if gen is None:
            raise Unauthorized(INVALID)
        self._changed()
        return tokens.issue(user.name, gen, claims.sid, user.token_version)

    def logout(self, name: str, sid: str) -> bool:
        user = self.get(name)
        if user is None or not close_session(user.sessions, user.session_expires, sid):
            return False
        self._changed()
        return True

    # -- broadcast -----------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """A compact msgpack-able copy (str/int/bool/list/dict only)."""
        return {"v": WIRE_VERSION, "rev": self.revision,
                "users": [[u.name, u.password_hash, u.ha1, u.admin, u.push, u.pull,
                           u.token_version,
                           {sid: [gen, u.session_expires.get(sid, 0)] for sid, gen in u.sessions.items()}]
                          for u in self._users.values()]}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> UserTable:
        if wire.get("v") != WIRE_VERSION:
            raise BadRequest(f"users wire version {wire.get('v')!r} not understood")
        table = cls()
        for name, pw_hash, ha1, admin, push, pull, uv, sessions in wire["users"]:
            user = User(name, pw_hash, ha1, admin, push, pull, uv)
            for sid, (gen, exp) in sessions.items():
                user.sessions[sid] = gen
                user.session_expires[sid] = exp
            table._users[name] = user
        table.revision = int(wire.get("rev", 0))
        return table


def relay_user_wire(secret: str) -> list[str]:
    """The relay user as the supervisor sends it to the fronts: (name, hash, HA1)."""
    return [RELAY_USER, hash_password(secret), digest_ha1(RELAY_USER, REALM, secret)]


def relay_user(wire: list[str]) -> User:
    """The relay user of `relay_user_wire`: may pull any path, push none, no admin."""
    name, pw_hash, ha1 = wire
    return User(name, pw_hash, ha1, admin=False, push="", pull="*")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Made on first use, not at import: scrypt costs every process ~50 ms."""
    return hash_password(secrets.token_hex(8))


def initial_users(path: str, admin_password: str | None) -> tuple[UserTable, str | None, bool]:
    """The users file; when there is none, a table with `admin` (admin, push
    and pull `*`) and `admin_password` (HUB_ADMIN_PASSWORD) or a random one.
    Returns (table, the generated password or None, whether the table is new
    or was migrated and should be stored)."""
    if os.path.exists(path):
        table = UserTable.load(path)
        return table, None, table.migrated
    generated = None
    if not admin_password:
        generated = admin_password = secrets.token_urlsafe(12)
    table = UserTable()
    table.upsert({"name": ADMIN_NAME, "password": admin_password, "admin": True,
                  "push": "*", "pull": "*"})
    return table, generated, True


def first_start(data_dir: str, admin_password: str | None,
                users_file: str = "users.json") -> tuple[UserTable, str | None]:
    """`initial_users`, saving a new table (0600); returns the generated
    password for the caller to print once."""
    path = os.path.join(data_dir, users_file)
    existed = os.path.exists(path)
    table, generated, _store = initial_users(path, admin_password)
    if not existed:
        table.save(path)
    return table, generated
