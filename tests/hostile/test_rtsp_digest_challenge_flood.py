"""Asking for Digest challenges without end costs the front nothing.

Before, every 401 stored its nonce for the nonce's TTL (300 s), and past
4096 stored nonces each new challenge rebuilt the whole table to prune
it: 10,000 unanswered DESCRIBEs within 5 minutes made each later 401 cost
~2.5 ms of the front's loop and 20,000 ~9 ms, growing with every one (and
the table's memory without bound). Now a nonce carries its issue time
under an HMAC of the front's: nothing is stored, a challenge costs
microseconds however many came before, and nonces still expire, still
verify, and a forged or altered one is never taken."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.api.rtsp.challenge import NONCE_TTL, RtspChallenger, StaleNonce
from hub.errors import Unauthorized
from hub.media.rtsp.auth import parse_challenge
from hub.store.users import UserTable

from .rtsp_peers import digest

FLOOD = 30_000


def test_a_flood_of_challenges_keeps_each_one_cheap_and_nonces_good() -> None:
    now = [1000.0]
    challenger = RtspChallenger("digest", clock=lambda: now[0])
    users = UserTable()
    users.upsert({"name": "alice", "password": "s3cret-pass", "pull": "/live/*"})
    uri = "rtsp://h/live/a"

    def check(value: str) -> str:
        auth = digest(value, "alice", "s3cret-pass", "DESCRIBE", uri)
        return asyncio.run(challenger.user(users, auth, "DESCRIBE", uri)).name

    first = challenger.challenge()
    t0 = time.perf_counter()
    deadline = t0 + 5.0
    issued = 0
    while issued < FLOOD and time.perf_counter() < deadline:
        challenger.challenge()
        issued += 1
    took = time.perf_counter() - t0
    assert issued == FLOOD, f"{issued} challenges in 5 s (each one pays for those before it)"
    assert took / FLOOD < 100e-6, f"{took / FLOOD * 1e6:.0f} us a challenge"
    assert check(first) == "alice"  # the flood pushed nobody's nonce out
    value = challenger.challenge()
    nonce = parse_challenge(value).nonce  # type: ignore[union-attr]
    # Altered, foreign or garbage nonces are stale (never issued here), never an error.
    other = RtspChallenger("digest", clock=lambda: now[0]).challenge()
    for forged in (nonce[:10] + ("0" if nonce[10] != "0" else "1") + nonce[11:], "0" * len(nonce), "é" * 64,
                   "", parse_challenge(other).nonce):  # type: ignore[union-attr]
        with pytest.raises(StaleNonce):
            check(value.replace(nonce, forged))
    now[0] += NONCE_TTL + 1
    with pytest.raises(StaleNonce):
        check(value)
    with pytest.raises(Unauthorized) as info:
        asyncio.run(challenger.user(users, digest(challenger.challenge(), "alice", "wrong", "DESCRIBE", uri),
                                    "DESCRIBE", uri))
    assert not isinstance(info.value, StaleNonce)
