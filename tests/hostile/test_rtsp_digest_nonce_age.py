"""Issue 12, defect 8, the nonce's age: the front's RTSP challenger, with a
clock of its own, refuses a nonce past its TTL as stale (a client that
knows the password retries with the fresh nonce), and never calls a wrong
password or another path's credentials stale."""

from __future__ import annotations

import asyncio

import pytest

from hub.api.rtsp.challenge import NONCE_TTL, RtspChallenger, StaleNonce
from hub.errors import Unauthorized
from hub.media.rtsp.auth import parse_challenge
from hub.store.users import UserTable

from .rtsp_peers import digest


def test_a_nonce_past_its_ttl_is_stale_and_a_fresh_one_is_not() -> None:
    now = [1000.0]
    challenger = RtspChallenger("digest", clock=lambda: now[0])
    users = UserTable()
    users.upsert({"name": "alice", "password": "s3cret-pass", "pull": "/live/*"})

    def answer(value: str, uri: str) -> str:
        return digest(value, "alice", "s3cret-pass", "DESCRIBE", uri)

    async def check(authorization: str, uri: str) -> str:
        user = await challenger.user(users, authorization, "DESCRIBE", uri)
        return user.name

    uri = "rtsp://h/live/a"
    value = challenger.challenge()
    assert asyncio.run(check(answer(value, uri), uri)) == "alice"
    now[0] += NONCE_TTL + 1
    with pytest.raises(StaleNonce):
        asyncio.run(check(answer(value, uri), uri))
    # A wrong password on an old nonce is not "stale": the client must ask its user.
    with pytest.raises(Unauthorized) as info:
        asyncio.run(check(digest(value, "alice", "wrong", "DESCRIBE", uri), uri))
    assert not isinstance(info.value, StaleNonce)
    # Nor is a fresh nonce used for another path.
    value = challenger.challenge()
    with pytest.raises(Unauthorized) as info:
        asyncio.run(check(answer(value, "rtsp://h/live/b"), uri))
    assert not isinstance(info.value, StaleNonce)
    assert asyncio.run(check(answer(value, uri), uri)) == "alice"
    assert parse_challenge(challenger.challenge(stale=True)).stale  # type: ignore[union-attr]
