"""The stores' Redis backend against a real redis-server: transactions that
lose nothing, changes reported to the other node, refusals that change nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hub.cluster import keys as K
from hub.cluster.link import RedisLink
from hub.cluster.stores import RedisBackend
from hub.config import Config
from hub.errors import BadRequest, StoreUnavailable
from hub.store.routes import RouteTable
from hub.supervisor.stores import table_specs
from tests.cluster.conftest import RedisServer


class Backend:
    def __init__(self, url: str, name: str, data: Path) -> None:
        async def resync() -> None:
            if self.backend.specs:
                await self.backend.resync()

        self.link = RedisLink(url, [K.CHANGED], self._message, resync)
        self.backend = RedisBackend(self.link, name)
        self.changes: list[tuple[str, Any]] = []
        self.backend.on_remote_change(lambda kind, table: self.changes.append((kind, table)))
        self.specs = table_specs(Config(data=str(data)))
        self.lock = asyncio.Lock()

    def _message(self, channel: str, data: bytes) -> None:
        self.backend.on_changed(data)

    async def __aenter__(self) -> Backend:
        self.link.start()
        await asyncio.wait_for(self.link.wait_up(), 5)
        self.tables = await self.backend.open(self.specs)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.backend.aclose()
        await self.link.aclose()

    async def add_route(self, i: int) -> None:
        """As the supervisor's Stores do: one change of this node at a time."""
        spec = self.specs[1]
        obj = {"pattern": f"/r/{i:03d}", "url": f"rtsp://10.0.0.1/{i}"}
        async with self.lock:
            self.tables["routes"], _ = await self.backend.update(spec, self.tables["routes"],
                                                                 lambda t: t.upsert(obj))


def test_two_nodes_writing_at_once_lose_nothing(redis_server: RedisServer, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ADMIN_PASSWORD", "admin")

    async def main() -> None:
        async with Backend(redis_server.url, "a", tmp_path / "a") as a, \
                Backend(redis_server.url, "b", tmp_path / "b") as b:
            await asyncio.gather(*(n.add_route(i) for i in range(60) for n in [(a, b)[i % 2]]))
            await asyncio.sleep(0.5)
            stored = json.loads(redis_server.command("GET", K.table_key("routes")))
            assert sorted(r["pattern"] for r in stored) == [f"/r/{i:03d}" for i in range(60)]
            assert int(redis_server.command("GET", K.rev_key("routes"))) == 1 + 60
            # Each node holds the newest table, whatever order its reloads and writes finished in.
            for n in (a, b):
                held: RouteTable = n.backend.tables["routes"]
                assert len(held) == 60 and n.backend.revs["routes"] == 61
            assert any(kind == "routes" for kind, _t in a.changes + b.changes)
            assert a.backend.conflicts + b.backend.conflicts > 0  # the race did happen, and was retried

    asyncio.run(main())


def test_a_refused_change_writes_nothing_and_redis_away_is_503(redis_server: RedisServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ADMIN_PASSWORD", "admin")

    async def main() -> None:
        async with Backend(redis_server.url, "a", tmp_path / "a") as a:
            spec = a.specs[1]
            rev = redis_server.command("GET", K.rev_key("routes"))
            with pytest.raises(BadRequest):
                await a.backend.update(spec, a.tables["routes"], lambda t: t.upsert({"pattern": "/x", "url": "http://no"}))
            assert redis_server.command("GET", K.rev_key("routes")) == rev
            # A change that changes nothing is not written either.
            same, result = await a.backend.update(spec, a.tables["routes"], lambda t: t.delete("/none"))
            assert result is False and redis_server.command("GET", K.rev_key("routes")) == rev
            redis_server.stop()
            with pytest.raises(StoreUnavailable):
                for _ in range(20):  # the link notices within a read wait
                    await a.backend.update(spec, a.tables["routes"], lambda t: t.upsert({"pattern": "/y", "url": "rtsp://h/y"}))
                    await asyncio.sleep(0.1)
            redis_server.start()
            await asyncio.wait_for(a.link.wait_up(), 15)
            assert json.loads(redis_server.command("GET", K.table_key("routes"))) == []

    asyncio.run(main())
