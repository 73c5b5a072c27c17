"""Access and refresh tokens as HS256 JWTs that any process verifies alone.

The reference keeps random tokens in one process's memory; we sign them so
fronts and shards check them without asking anyone, and revoke them through
two counters every process holds in its copy of the users table:

- `uv`, the user's token version: bumped on a password change, it kills all of
  that user's tokens; a deleted user's tokens fail because the lookup misses.
- `gen`, a login session's generation: a refresh must carry the current one
  and bumps it, so the old access and refresh tokens of that session die.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Optional, Tuple

from ..errors import HubError, Unauthorized

ALGORITHM = "HS256"
KEY_BYTES = 32
ACCESS = "access"
REFRESH = "refresh"
TokenType = Literal["access", "refresh"]
INVALID = "Token is not valid"
MAX_TOKEN_LENGTH = 4096
CACHE_SIZE = 1024

# lookup(user) -> (user's token version, {session id: generation}) or None.
SessionLookup = Callable[[str], Optional[Tuple[int, Mapping[str, int]]]]


@dataclass(frozen=True)
class Claims:
    sub: str
    typ: str
    sid: str
    gen: int
    uv: int
    iat: int
    exp: int


def new_session_id() -> str:
    """A login session id: random, short, URL-safe."""
    return secrets.token_urlsafe(12)


class TokenService:
    """Issues and verifies token pairs; the clock is injected for tests."""

    def __init__(self, key: bytes, access_ttl: int = 7200, refresh_ttl: int = 7 * 86400,
                 now: Callable[[], float] = time.time) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"token key must be at least {KEY_BYTES} bytes")
        self._key = key
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._now = now
        self._cache: dict[str, Claims] = {}

    def now(self) -> int:
        return int(self._now())

    def derive(self, label: bytes) -> bytes:
        """A key of its own for `label`, from the signing key every front
        holds (HMAC-SHA256): what a front signs, another front checks."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def _sign(self, user: str, typ: str, sid: str, gen: int, uv: int, iat: int, ttl: int) -> str:
        import jwt  # on first use: pyjwt and cryptography take ~10 MB a process

        claims = {"sub": user, "typ": typ, "sid": sid, "gen": gen, "uv": uv,
                  "iat": iat, "exp": iat + ttl}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def issue(self, user: str, gen: int, sid: str, uv: int = 0) -> tuple[str, str]:
        """A new (access, refresh) pair for one generation of one login session."""
        iat = self.now()
        return (self._sign(user, ACCESS, sid, gen, uv, iat, self.access_ttl),
                self._sign(user, REFRESH, sid, gen, uv, iat, self.refresh_ttl))

    def decode(self, token: str, typ: TokenType) -> Claims:
        """Signature, expiry, type and claim shapes; no revocation check.

        A token's signature and claims never change, so checked ones are kept
        in a small cache: a player reconnecting or an API client polling pays
        for HMAC and JSON once, not per request (expiry is still checked).
        """
        claims = self._cache.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._cache) >= CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
            self._cache[token] = claims
        if claims.typ != typ or claims.exp <= self.now():
            raise Unauthorized(INVALID)
        return claims

    def _decode(self, token: str) -> Claims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized(INVALID)
        import jwt  # on first use (see _sign)

        try:
            raw = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                             options={"verify_exp": False, "verify_iat": False,
                                      "verify_nbf": False, "verify_aud": False,
                                      "verify_iss": False})
        except jwt.PyJWTError:
            raise Unauthorized(INVALID) from None
        try:
            claims = Claims(sub=raw["sub"], typ=raw["typ"], sid=raw["sid"], gen=raw["gen"],
                            uv=raw["uv"], iat=raw["iat"], exp=raw["exp"])
        except (KeyError, TypeError):
            raise Unauthorized(INVALID) from None
        for value, kind in ((claims.sub, str), (claims.typ, str), (claims.sid, str),
                            (claims.gen, int), (claims.uv, int), (claims.iat, int),
                            (claims.exp, int)):
            if not isinstance(value, kind) or isinstance(value, bool):
                raise Unauthorized(INVALID)
        return claims

    def verify(self, token: str, typ: TokenType, lookup: SessionLookup) -> Claims:
        """A valid, unexpired token of type `typ` whose user, token version and
        session generation are current; anything else is 401 Token is not valid."""
        claims = self.decode(token, typ)
        found = lookup(claims.sub)
        if found is None:
            raise Unauthorized(INVALID)
        uv, sessions = found
        if claims.uv != uv or sessions.get(claims.sid) != claims.gen:
            raise Unauthorized(INVALID)
        return claims


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def load_or_create_key(path: str) -> bytes:
    """The signing key shared by all processes, created once with mode 0600.

    Creation writes a private temp file and hard-links it into place, so two
    processes racing at first start end up with the same key and a reader
    never sees a half-written file.
    """
    try:
        with open(path, "rb") as f:
            key = f.read()
    except FileNotFoundError:
        pass
    else:
        if len(key) < KEY_BYTES:
            raise HubError(f"{path}: token key shorter than {KEY_BYTES} bytes")
        return key
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    key = generate_key()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            with open(path, "rb") as f:
                return f.read()
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        os.unlink(tmp)
    return key
