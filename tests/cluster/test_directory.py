"""The stream directory's rules, against a real redis-server (no node trees)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

from hub.cluster import keys as K
from hub.cluster.directory import ENTRY_TTL, PENDING_TTL, StreamDirectory
from hub.cluster.link import RedisLink
from tests.cluster.conftest import RedisServer


class Node:
    """One node's directory on its own link; what it was told to close."""

    def __init__(self, url: str, name: str, inst: str = "i1") -> None:
        async def nothing() -> None:
            pass

        self.link = RedisLink(url, [K.rpc_channel(name)], lambda ch, data: None, nothing)
        self.closed: list[tuple[str, int]] = []
        self.taken: list[tuple[str, dict[str, Any]]] = []

        async def close_local(path: str, sid: int) -> None:
            self.closed.append((path, sid))
            self.directory.stream_down(0, {"path": path, "sid": sid})

        self.directory = StreamDirectory(self.link, name, inst, f"{name}:1554", close_local,
                                         lambda path, other: self.taken.append((path, other)))

    async def __aenter__(self) -> Node:
        self.link.start()
        await asyncio.wait_for(self.link.wait_up(), 5)
        self._runner = asyncio.get_running_loop().create_task(self.directory.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._runner.cancel()
        await asyncio.gather(self._runner, return_exceptions=True)
        await self.link.aclose()

    def up(self, path: str, sid: int, kind: str = "publish", t: float = 1000.0) -> None:
        self.directory.stream_up(0, {"path": path, "sid": sid, "kind": kind, "codecs": ["H264"],
                                     "start_on": "2026-01-01T00:00:00Z", "t": t})


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0.02)


def entry(redis: RedisServer, path: str) -> dict[str, Any] | None:
    raw = redis.command("GET", K.stream_key(path))
    return None if raw is None else dict(json.loads(raw))


def test_a_publisher_claims_and_takes_over_and_the_old_owner_is_told(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with Node(redis_server.url, "a") as a, Node(redis_server.url, "b") as b:
            a.up("/live/x", 256)
            await settle()
            got = entry(redis_server, "/live/x")
            assert got is not None and (got["node"], got["sid"], got["kind"]) == ("a", 256, "publish")
            assert got["addr"] == "a:1554" and got["codecs"] == ["H264"]
            assert 0 < int(redis_server.command("PTTL", K.stream_key("/live/x"))) <= ENTRY_TTL * 1000
            b.up("/live/x", 512, t=2000.0)
            await settle()
            assert entry(redis_server, "/live/x")["node"] == "b"  # type: ignore[index]
            assert [(p, o["node"], o["sid"]) for p, o in b.taken] == [("/live/x", "a", 256)]
            assert a.directory.takeover_of({"path": "/live/x", "inst": "i1", "sid": 256}) == 256
            assert a.directory.takeover_of({"path": "/live/x", "inst": "other", "sid": 256}) is None
            # a's stream ends: its release must not remove b's entry.
            a.directory.stream_down(0, {"path": "/live/x", "sid": 256})
            await settle()
            assert entry(redis_server, "/live/x")["node"] == "b"  # type: ignore[index]
            b.directory.stream_down(0, {"path": "/live/x", "sid": 512})
            await settle()
            assert entry(redis_server, "/live/x") is None

    run(main)


def test_a_route_pull_claims_only_a_free_path_and_closes_if_it_lost(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with Node(redis_server.url, "a") as a, Node(redis_server.url, "b") as b:
            assert await b.directory.locate("/cam/1", routed=False) == ("none", None)
            verdict, _ = await b.directory.locate("/cam/1", routed=True)
            assert verdict == "claimed"
            pending = entry(redis_server, "/cam/1")
            assert pending is not None and (pending["node"], pending["kind"]) == ("b", "pending")
            assert ENTRY_TTL * 1000 < int(redis_server.command("PTTL", K.stream_key("/cam/1"))) <= PENDING_TTL * 1000
            verdict, seen = await a.directory.locate("/cam/1", routed=True)
            assert verdict == "other" and seen is not None and seen["addr"] == "b:1554"
            assert (await b.directory.locate("/cam/1", routed=True))[0] == "mine"
            # a's own pull of it went live anyway (a race): it loses and is closed.
            a.up("/cam/1", 256, kind="pull")
            await settle()
            assert a.closed == [("/cam/1", 256)]
            b.up("/cam/1", 768, kind="pull")
            await settle()
            assert entry(redis_server, "/cam/1")["kind"] == "pull" and not b.closed  # type: ignore[index]

    run(main)


def test_refresh_renews_rewrites_and_settles_two_owners(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with Node(redis_server.url, "a") as a, Node(redis_server.url, "b") as b:
            a.up("/live/y", 256, t=1000.0)
            b.up("/live/z", 256, t=1000.0)
            await settle()
            redis_server.command("PEXPIRE", K.stream_key("/live/y"), "500")
            redis_server.command("DEL", K.stream_key("/live/z"))  # expired while Redis was away
            await a.directory.refresh()
            await b.directory.refresh()
            assert int(redis_server.command("PTTL", K.stream_key("/live/y"))) > 500
            assert entry(redis_server, "/live/z")["node"] == "b"  # type: ignore[index]
            # After an outage both hold /live/y: the newer publisher (b) keeps it.
            b.up("/live/y", 512, t=1500.0)
            redis_server.command("SET", K.stream_key("/live/y"), a.directory.owned["/live/y"].entry)
            b.directory.owned["/live/y"].claimed = True  # as if claimed before the outage
            await b.directory.refresh()
            await settle()
            assert entry(redis_server, "/live/y")["node"] == "b"  # type: ignore[index]
            await a.directory.refresh()
            await settle()
            assert a.closed == [("/live/y", 256)] and not b.closed

    run(main)


def test_leaving_removes_only_our_entries(redis_server: RedisServer) -> None:
    async def main() -> None:
        async with Node(redis_server.url, "a") as a, Node(redis_server.url, "b") as b:
            a.up("/live/1", 256)
            a.up("/live/2", 512)
            b.up("/live/3", 256)
            await settle()
            await a.directory.release_all()
            assert entry(redis_server, "/live/1") is None and entry(redis_server, "/live/2") is None
            assert entry(redis_server, "/live/3") is not None

    run(main)
