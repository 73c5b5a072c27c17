"""Who is asking: tokens for the API and HTTP players, Digest/Basic for RTSP.

Every front verifies on its own, against its broadcast copy of the users
table; nothing here asks another process.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Mapping

from ..auth.passwords import REALM, verify_password
from ..errors import Forbidden, Unauthorized
from ..media.rtsp import (BasicChallenge, BasicCredentials, DigestChallenge, DigestCredentials,
                          parse_authorization, verify_digest)
from ..store.users import User

if TYPE_CHECKING:
    from .front import FrontContext

TOKEN_INVALID = "Token is not valid"
NOT_ADMIN = "访问被拒绝，请用管理员登录"  # the reference's: access denied, log in as admin
NONCE_TTL = 300.0


def token_from(query: Mapping[str, str], authorization: str | None) -> str:
    """`?token=` (the reference's way) or `Authorization: Bearer` (ours too)."""
    token = query.get("token", "")
    if not token and authorization and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    return token


def user_for_token(front: FrontContext, token: str) -> User:
    """The user of a valid access token; 401 otherwise."""
    if not token or front.users is None or front.tokens is None:
        raise Unauthorized(TOKEN_INVALID)
    claims = front.tokens.verify(token, "access", front.users.token_lookup)
    user = front.users.get(claims.sub)
    if user is None:
        raise Unauthorized(TOKEN_INVALID)
    return user


def check_pull_token(front: FrontContext, query: Mapping[str, str], authorization: str | None,
                     path: str) -> None:
    """HTTP/WS players when `auth` is on: a valid token with the pull right."""
    if not front.config.auth:
        return
    user = user_for_token(front, token_from(query, authorization))
    if not user.can_pull(path):
        raise Forbidden("Forbidden")


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

    def user(self, front: FrontContext, authorization: str | None, method: str) -> User:
        """The authenticated user, or Unauthorized (the caller re-challenges)."""
        if not authorization or front.users is None:
            raise Unauthorized("require legal Authorization field")
        try:
            creds = parse_authorization(authorization)
        except Exception:
            raise Unauthorized("unreadable Authorization") from None
        if isinstance(creds, DigestCredentials):
            issued = self._nonces.get(creds.nonce)
            if issued is None or time.monotonic() - issued > NONCE_TTL or creds.realm != REALM:
                raise Unauthorized("stale nonce")
            user = front.users.get(creds.username.lower())
            if user is None or not user.ha1 or not verify_digest(creds, method, user.ha1):
                raise Unauthorized("bad credentials")
            return user
        if isinstance(creds, BasicCredentials):
            user = front.users.get(creds.username.lower())
            if user is None or not verify_password(user.password_hash, creds.password):
                raise Unauthorized("bad credentials")
            return user
        raise Unauthorized("unsupported Authorization scheme")
