"""RTSP's Digest (default) and Basic challenges and credential checks.

One per front: Digest nonces are issued here, bounded and expiring; users
are checked against the front's broadcast copy of the users table.

Basic sends the password itself, which is checked against its scrypt hash:
tens of milliseconds of CPU. That never runs on the event loop (it would
stall every player of the front): it runs in threads (hub.auth.hashing:
at most 2 at a time, 32 in hand, more is 503), and a password that
verified once is remembered (by its SHA-256, with the hash it matched) so
a player's DESCRIBE/SETUP/PLAY cost one scrypt, not three.

A Digest nonce carries its own issue time, signed (HMAC with a key of this
front's): nothing is kept per challenge, so a stranger asking for
challenges without end costs no memory, and checking one is O(1).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
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
#: A nonce: its issue time (a double, 16 hex digits), 16 hex digits of
#: chance, then NONCE_MAC hex digits of HMAC-SHA256 over both.
_STAMP = struct.Struct(">d")
NONCE_MAC = 32
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
        self._nonce_key = os.urandom(32)
        # (user, sha256(password)) -> the stored hash it verified against.
        self._verified: OrderedDict[tuple[str, bytes], str] = OrderedDict()
        self.hashing = hashing_workers(BASIC_WORKERS)

    def challenge(self, stale: bool = False) -> str:
        if self.scheme == "basic":
            return str(BasicChallenge(REALM))
        body = _STAMP.pack(self.clock()).hex() + os.urandom(8).hex()
        return str(DigestChallenge(REALM, body + self._mac(body), stale=stale))

    def _mac(self, body: str) -> str:
        return hmac.new(self._nonce_key, body.encode("ascii"), hashlib.sha256).hexdigest()[:NONCE_MAC]

    def issued(self, nonce: str) -> float | None:
        """When this challenger issued `nonce` (None: it did not)."""
        body, mac = nonce[:-NONCE_MAC], nonce[-NONCE_MAC:]
        if len(body) != 32 or not nonce.isascii() or not hmac.compare_digest(mac, self._mac(body)):
            return None
        return float(_STAMP.unpack(bytes.fromhex(body[:16]))[0])  # ours: hex

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
                                   issued=self.issued(creds.nonce), now=self.clock(), ttl=NONCE_TTL)
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
