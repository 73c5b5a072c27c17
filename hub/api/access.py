"""Who is asking: tokens for the API and the HTTP/WebSocket players.

RTSP's Digest/Basic challenges are `hub.api.rtsp.challenge`'s.

Every front verifies on its own, against its broadcast copy of the users
table; nothing here asks another process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ..errors import Forbidden, Unauthorized
from ..store.users import User

if TYPE_CHECKING:
    from .context import FrontContext

TOKEN_INVALID = "Token is not valid"
NOT_ADMIN = "访问被拒绝，请用管理员登录"  # the reference's: access denied, log in as admin


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
                     path: str) -> User | None:
    """HTTP/WS players when `auth` is on: a valid token with the pull right.
    The token's user, or None when auth is off."""
    if not front.config.auth:
        return None
    user = user_for_token(front, token_from(query, authorization))
    if not user.can_pull(path):
        raise Forbidden("Forbidden")
    return user
