"""RTSP's Digest (default) and Basic challenges and credential checks.

One per front: Digest nonces are issued here, bounded and expiring; users
are checked against the front's broadcast copy of the users table.

Basic sends the password itself, which is checked against its scrypt hash:
tens of milliseconds of CPU. That never runs on the event loop (it would
stall every player of the front): it runs in threads (hub.auth.hashing:
at most 2 at a time, 32 in hand, more is 503), and a password that
verified once is remembered (by its SHA-256, with the hash it matched) so
a player's DESCRIBE/SETUP/PLAY cost one scrypt, not three.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from ...auth.hashing import hashing_workers
from ...auth.passwords import REALM, verify_password
from ...errors import Unauthorized
from ...media.rtsp import (BasicChallenge, BasicCredentials, DigestChallenge, DigestCredentials, DigestVerdict,
                           check_digest, parse_authorization)
from ...store.users import User, UserTable

NONCE_TTL = 300.0
#: Basic password checks (scrypt) run at once per front.
BASIC_WORKERS = 2
#: Basic passwords remembered after a successful check.
BASIC_CACHE = 1024


class StaleNonce(Unauthorized):
    """Right credentials on a nonce that is too old or not ours: challenge
    again with `stale=TRUE` (the client retries without asking its user)."""


class RtspChallenger:
    """Per-front Digest nonces (bounded, expiring) and credential checks."""

    def __init__(self, scheme: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.scheme = scheme
        self.clock = clock
        self._nonces: dict[str, float] = {}
        # (user, sha256(password)) -> the stored hash it verified against.
        self._verified: OrderedDict[tuple[str, bytes], str] = OrderedDict()
        self.hashing = hashing_workers(BASIC_WORKERS)

    def challenge(self, stale: bool = False) -> str:
        if self.scheme == "basic":
            return str(BasicChallenge(REALM))
        now = self.clock()
        if len(self._nonces) > 4096:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < NONCE_TTL}
        nonce = os.urandom(16).hex()
        self._nonces[nonce] = now
        return str(DigestChallenge(REALM, nonce, stale=stale))

    async def user(self, users: UserTable | None, authorization: str | None, method: str, uri: str) -> User:
        """The user whose credentials authorize `method` on `uri`, or
        Unauthorized (the caller re-challenges; StaleNonce: with stale=TRUE)."""
        if not authorization or users is None:
            raise Unauthorized("require legal Authorization field")
        try:
            creds = parse_authorization(authorization)
        except Exception:
            raise Unauthorized("unreadable Authorization") from None
        if isinstance(creds, DigestCredentials):
            user = users.get(creds.username.lower())
            if user is None or not user.ha1:
                raise Unauthorized("bad credentials")
            verdict = check_digest(creds, method=method, request_uri=uri, ha1=user.ha1, realm=REALM,
                                   issued=self._nonces.get(creds.nonce), now=self.clock(), ttl=NONCE_TTL)
            if verdict is DigestVerdict.STALE:
                raise StaleNonce("stale nonce")
            if verdict is not DigestVerdict.OK:
                raise Unauthorized("bad credentials")
            return user
        if isinstance(creds, BasicCredentials):
            user = users.get(creds.username.lower())
            if user is None or not await self._check_basic(user, creds.password):
                raise Unauthorized("bad credentials")
            return user
        raise Unauthorized("unsupported Authorization scheme")

    async def check_password(self, user: User, password: str) -> bool:
        """`password` against `user`'s scrypt hash, off the event loop (as
        Basic's); for clients that send a password by other means (RTMP's
        `?user=&pass=`)."""
        return await self._check_basic(user, password)

    async def _check_basic(self, user: User, password: str) -> bool:
        key = (user.name, hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())
        stored = user.password_hash
        if self._verified.get(key) == stored:
            self._verified.move_to_end(key)
            return True
        ok = await self.hashing.run(verify_password, stored, password)
        if ok:
            self._verified[key] = stored
            if len(self._verified) > BASIC_CACHE:
                self._verified.popitem(last=False)
        return ok
