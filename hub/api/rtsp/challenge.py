"""RTSP's Digest (default) and Basic challenges and credential checks.

One per front: Digest nonces are issued here, bounded and expiring; users
are checked against the front's broadcast copy of the users table.
"""

from __future__ import annotations

import os
import time

from ...auth.passwords import REALM, verify_password
from ...errors import Unauthorized
from ...media.rtsp import (BasicChallenge, BasicCredentials, DigestChallenge, DigestCredentials,
                           parse_authorization, verify_digest)
from ...store.users import User, UserTable

NONCE_TTL = 300.0


class RtspChallenger:
    """Per-front Digest nonces (bounded, expiring) and credential checks."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self._nonces: dict[str, float] = {}

    def challenge(self) -> str:
        if self.scheme == "basic":
            return str(BasicChallenge(REALM))
        now = time.monotonic()
        if len(self._nonces) > 4096:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < NONCE_TTL}
        nonce = os.urandom(16).hex()
        self._nonces[nonce] = now
        return str(DigestChallenge(REALM, nonce))

    def user(self, users: UserTable | None, authorization: str | None, method: str) -> User:
        """The authenticated user, or Unauthorized (the caller re-challenges)."""
        if not authorization or users is None:
            raise Unauthorized("require legal Authorization field")
        try:
            creds = parse_authorization(authorization)
        except Exception:
            raise Unauthorized("unreadable Authorization") from None
        if isinstance(creds, DigestCredentials):
            issued = self._nonces.get(creds.nonce)
            if issued is None or time.monotonic() - issued > NONCE_TTL or creds.realm != REALM:
                raise Unauthorized("stale nonce")
            user = users.get(creds.username.lower())
            if user is None or not user.ha1 or not verify_digest(creds, method, user.ha1):
                raise Unauthorized("bad credentials")
            return user
        if isinstance(creds, BasicCredentials):
            user = users.get(creds.username.lower())
            if user is None or not verify_password(user.password_hash, creds.password):
                raise Unauthorized("bad credentials")
            return user
        raise Unauthorized("unsupported Authorization scheme")
