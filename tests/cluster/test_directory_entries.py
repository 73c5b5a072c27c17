"""Directory entries another node wrote, unreadable or with fields of the
wrong type: they lose to ours, and never stop this node's work (its
heartbeat, its link to Redis). Against a real redis-server."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from hub.cluster import keys as K
from hub.cluster.directory import ENTRY_TTL
from hub.errors import NotFound
from tests.cluster.conftest import RedisServer, api
from tests.conftest import HubServer
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


def test_a_stream_that_cannot_be_closed_now_stops_neither_the_directory_nor_the_refresh(
        redis_server: RedisServer) -> None:
    """Closing our stream of a path another node holds asks the stream's
    shard, which may be restarting (NotFound) or slow (IpcTimeout). Before,
    that error ended the directory's task (no entry claimed or released
    again) or came out of refresh(), ending the node's tick (no heartbeat:
    the node's entries expired and it left the cluster until restarted)."""
    async def main() -> None:
        async with Node(redis_server.url, "a") as a:
            attempts: list[str] = []

            async def restarting(path: str, sid: int) -> None:
                attempts.append(path)
                raise NotFound(f"{path}: its shard is restarting")

            a.directory._close_local = restarting
            other = '{"node":"b","inst":"i9","sid":1,"kind":"publish","t":5000}'
            redis_server.command("SET", K.stream_key("/live/p"), other, "PX", "60000")
            a.up("/live/p", 3, kind="pull")  # loses the race: its close fails
            await settle()
            assert attempts == ["/live/p"]
            a.up("/live/q", 4)  # the directory still works
            await settle()
            assert entry(redis_server, "/live/q")["node"] == "a"  # type: ignore[index]
            redis_server.command("SET", K.stream_key("/live/q"), other, "PX", "60000")
            await a.directory.refresh()  # b is the newer publisher: ours would close
            assert attempts == ["/live/p", "/live/q"]
            await a.directory.refresh()  # and is tried again on the next refresh
            assert attempts == ["/live/p", "/live/q", "/live/q"]

    run(main)


def test_the_cluster_listing_takes_a_node_entry_with_fields_of_the_wrong_type(
        node_factory: Callable[..., HubServer], redis_server: RedisServer) -> None:
    """Before, another node's `t0` that was no number made `GET /api/v1/cluster`
    a 500 on every node (`float("soon")`)."""
    a = node_factory("a")
    redis_server.command("SADD", K.NODES, "z", "y")
    redis_server.command("SET", K.node_key("z"), '{"address":"10.0.0.9:1554","t0":"soon"}', "PX", "60000")
    redis_server.command("SET", K.node_key("y"), '["not", "an", "entry"]', "PX", "60000")
    status, body = api(a, "GET", "/api/v1/cluster", token=a.token())
    assert status == 200, body
    by_name = {n["name"]: n for n in body["nodes"]}
    assert sorted(by_name) == ["a", "y", "z"]
    assert by_name["z"]["address"] == "10.0.0.9:1554" and by_name["z"]["uptime"] == 0
    assert by_name["a"]["self"] and by_name["a"]["uptime"] > 0
