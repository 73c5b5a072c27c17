"""The Redis link when every pooled connection is in use (a burst of asks,
a slow Redis): the command that finds none fails, the link stays up.
Against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from hub.cluster import link as link_mod
from hub.cluster.link import LINK_ERRORS
from tests.cluster.conftest import RedisServer, started_link


def test_a_command_finding_no_free_connection_fails_without_taking_the_link_down(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, redis-py's "No connection available." counted as Redis being
    away: the link went down and up again (its subscription, the stores'
    resync, every stream's directory entry claimed again) for each burst."""
    monkeypatch.setattr(link_mod, "MAX_CONNECTIONS", 4)
    monkeypatch.setattr(link_mod, "POOL_WAIT", 0.2)

    async def main() -> None:
        link = await started_link(redis_server.url)
        try:
            # The subscription holds one connection; three commands hold the
            # rest for 1 s (within the 2 s reply timeout: Redis answers, late).
            holding = [asyncio.ensure_future(link.client.blpop([f"hub:test:empty{i}"], timeout=1))
                       for i in range(3)]
            await asyncio.sleep(0.1)
            with pytest.raises(LINK_ERRORS) as caught:
                await link.client.get("hub:test:x")
            link.broken(caught.value)  # what every caller does with a LINK_ERROR
            await asyncio.gather(*holding)
            await asyncio.sleep(0.5)
            assert link.up and link.outages == 0
            assert await link.client.get("hub:test:x") is None  # and it serves on
        finally:
            await link.aclose()

    asyncio.run(asyncio.wait_for(main(), 20))
