"""Directory entries another node wrote, unreadable or with fields of the
wrong type: they lose to ours, and never stop this node's work (its
heartbeat, its link to Redis). Against a real redis-server."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from hub.cluster import keys as K
from hub.cluster.directory import ENTRY_TTL
from tests.cluster.conftest import RedisServer
from tests.cluster.test_directory import Node, entry, settle

TEST_TIMEOUT = 15.0


def run(fn: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(fn(), TEST_TIMEOUT)

    asyncio.run(bounded())


def test_an_entry_with_a_start_time_that_is_no_number_loses_and_the_refresh_goes_on(
        redis_server: RedisServer) -> None:
    """Before, `float("soon")` raised out of `refresh()`, the node's tick
    task, which then ended: no more heartbeat, every entry of the node
    expired within 6 s and it was gone from the cluster until restarted."""
    async def main() -> None:
        async with Node(redis_server.url, "a") as a:
            a.up("/live/x", 256)
            await settle()
            assert entry(redis_server, "/live/x")["node"] == "a"  # type: ignore[index]
            redis_server.command("SET", K.stream_key("/live/x"),
                                 '{"node":"b","inst":"i9","sid":1,"kind":"publish","t":"soon"}',
                                 "PX", str(int(ENTRY_TTL * 1000)))
            await a.directory.refresh()  # ours is the newer publisher: it takes the path back
            await settle()
            got = entry(redis_server, "/live/x")
            assert got is not None and (got["node"], got["sid"]) == ("a", 256)
            assert a.closed == []

    run(main)


def test_an_entry_that_is_not_json_does_not_take_the_link_down(redis_server: RedisServer) -> None:
    """Before, the directory's Lua scripts failed on it (cjson.decode), the
    error counted as Redis being away, and a node's link went down and up
    again for as long as the entry was there (4 outages in 5 s measured, its
    reconnect re-claiming the path each time): each time a resync of the
    stores and every entry written again, and meanwhile every store change
    refused with 503."""
    async def main() -> None:
        async with Node(redis_server.url, "a") as a:
            redis_server.command("SET", K.stream_key("/live/y"), "not json", "PX", "60000")
            redis_server.command("SET", K.stream_key("/live/z"), "not json", "PX", "60000")
            a.up("/live/y", 7)  # a publisher's claim
            a.up("/live/z", 8, kind="pull")  # a route pull's (only if nobody holds it)
            for _ in range(3):
                await settle()
                await a.directory.refresh()
            assert a.link.outages == 0 and a.link.up
            assert await a.directory.locate("/live/z", True) == ("other", {})
            got = entry(redis_server, "/live/y")
            assert got is not None and (got["node"], got["sid"]) == ("a", 7)
            assert a.closed == [("/live/z", 8)]  # the pull lost the race: it closes
            await a.directory.release_all()  # ours goes, the other stays
            assert entry(redis_server, "/live/y") is None
            assert redis_server.command("GET", K.stream_key("/live/z")) == "not json"

    run(main)
