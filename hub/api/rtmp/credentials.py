"""Who an RTMP client is: credentials in its app or stream name.

RTMP has no authentication of its own, and an encoder such as OBS can only
fill in a server URL and a stream key, so credentials travel as a query on
either (`rtmp://h/live?token=..` / `cam1?user=..&pass=..`); the engine hands
both queries over, merged (`hub.media.rtmp.names`). An access token is
checked like the HTTP players' `?token=`; a password against the user's
scrypt hash by the front's `RtspChallenger`, off the event loop, bounded,
and remembered once verified (`hub.api.rtsp.challenge`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from ...errors import Forbidden, Unauthorized
from ...store.users import NAME_MAX, PASSWORD_MAX, User
from ..access import user_for_token

if TYPE_CHECKING:
    from ..context import FrontContext

__all__ = ["has_credentials", "rtmp_user", "authorize"]


def has_credentials(query: Mapping[str, str]) -> bool:
    return "token" in query or "user" in query


async def rtmp_user(front: FrontContext, query: Mapping[str, str]) -> User:
    """The user the query's credentials name; Unauthorized otherwise."""
    token = query.get("token")
    if token:
        return user_for_token(front, token)
    name, password = query.get("user", ""), query.get("pass", "")
    users = front.users
    if not name or len(name) > NAME_MAX or len(password) > PASSWORD_MAX or users is None:
        raise Unauthorized("credentials required")
    user = users.get(name)
    if user is None or not await front.rtsp_auth.check_password(user, password):
        raise Unauthorized("bad credentials")
    return user


async def authorize(front: FrontContext, query: Mapping[str, str], path: str, push: bool) -> User | None:
    """With `auth` on, the user with the push (or pull) right for `path`;
    None when auth is off. Unauthorized or Forbidden otherwise."""
    if not front.config.auth:
        return None
    user = await rtmp_user(front, query)
    if not (user.can_push(path) if push else user.can_pull(path)):
        raise Forbidden(f"{user.name} may not {'push' if push else 'pull'} {path}")
    return user
