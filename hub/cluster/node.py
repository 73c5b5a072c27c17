"""This node in the cluster: what the supervisor asks, what other nodes ask.

Composes the Redis link, the stores' backend, the stream directory and the
requests between nodes, and keeps the node's own entry (`hub:node:<name>`:
address, start, streams, players; TTL `NODE_TTL`) fresh with the
directory's entries on one tick. The supervisor reaches its own tree
through `LocalNode`.

The relay credential: `hub:relay-secret` (made by the first node) is the
password of the relay user (`hub.store.users.RELAY_USER`), which every
front accepts for pulling any path and nothing else. A node relaying a
stream from another dials `rtsp://%25relay:SECRET@ADDRESS/PATH`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import quote

from redis.exceptions import RedisError

from ..config import Config
from ..errors import NotFound, StoreUnavailable
from ..gotime import rfc3339nano
from ..ipc.messages import Located, StoreArgs
from ..store.users import RELAY_USER, relay_user_wire
from . import keys as K
from .directory import REFRESH_EVERY, StreamDirectory
from .link import LINK_ERRORS, RedisLink
from .rpc import NodeRpc
from .settings import advertise_address, node_name
from .stores import RedisBackend

log = logging.getLogger("hub.cluster")

NODE_TTL = 6.0
LEAVE_TIMEOUT = 1.0  # removing our entries when the node stops
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class LocalNode(Protocol):
    """What the cluster needs of this node's own process tree (the supervisor)."""

    async def local_streams(self) -> dict[str, Any]:
        """{"streams": [the shards' stream infos], "consumers": {path: [the fronts' consumers]}}"""
        ...

    async def delete_stream(self, path: str, stream_id: int | None = None) -> None: ...

    async def kick(self, cid: int) -> bool: ...

    def players(self) -> int: ...


class ClusterNode:
    def __init__(self, config: Config, local: LocalNode) -> None:
        self.name = node_name(config.node_name)
        self.addr = advertise_address(config.advertise, config.host, config.port)
        self.inst = secrets.token_hex(6)  # this run of the node: a restarted node is a new owner
        self.local = local
        self.t0 = time.time()
        self.start_on = rfc3339nano(datetime.now(timezone.utc))
        self.link = RedisLink(config.cluster, [K.CHANGED, K.rpc_channel(self.name)], self._on_message,
                              self._on_up)
        self.stores = RedisBackend(self.link, self.name)
        self.directory = StreamDirectory(self.link, self.name, self.inst, self.addr, self._close_local,
                                         self._takeover)
        self.rpc = NodeRpc(self.link, self.name, self.inst, self._serve)
        self._secret = ""
        self._relay_wire: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- start and stop ----------------------------------------------------------
    async def connect(self) -> None:
        """Until Redis answers (the tree cannot start without the stores)."""
        log.info("node %s (%s) joining the cluster at %s", self.name, self.addr, self.link.masked)
        self.link.start()
        await self.link.wait_up()
        client = self.link.client
        await client.set(K.RELAY_SECRET, secrets.token_urlsafe(32), nx=True)
        raw = await client.get(K.RELAY_SECRET)
        self._secret = raw.decode() if isinstance(raw, bytes) else str(raw)
        self._relay_wire = await asyncio.to_thread(relay_user_wire, self._secret)

    def serve(self) -> None:
        """The tree runs: keep the directory and the node's entry."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.directory.run(), name="directory"),
                       loop.create_task(self._tick(), name="cluster tick")]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.link.up:
            try:
                await asyncio.wait_for(self._leave(), LEAVE_TIMEOUT)
            except (RedisError, OSError, asyncio.TimeoutError, StoreUnavailable) as e:
                log.info("left the cluster without removing our entries (%s); they expire", e)
        await self.rpc.aclose()
        await self.stores.aclose()
        await self.link.aclose()

    async def _leave(self) -> None:
        await self.directory.release_all()
        await self.link.client.delete(K.node_key(self.name))
        await self.link.client.srem(K.NODES, self.name)

    # -- Redis: connection, messages, the tick --------------------------------------------
    async def _on_up(self) -> None:
        if self.stores.specs:  # a reconnect: catch up with what changed meanwhile
            await self.stores.resync()
        await self._register()
        self.directory.mark_all()

    def _on_message(self, channel: str, data: bytes) -> None:
        if channel == K.CHANGED:
            self.stores.on_changed(data)
        else:
            self.rpc.on_message(data)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            if not self.link.up:
                continue
            try:
                await self._register()
                await self.directory.refresh()
            except LINK_ERRORS as e:
                self.link.broken(e)

    def _entry(self) -> dict[str, Any]:
        return {"name": self.name, "inst": self.inst, "address": self.addr, "start_on": self.start_on,
                "t0": self.t0, "streams": len(self.directory.owned), "players": self.local.players(),
                "relays": self.directory.relay_count}

    async def _register(self) -> None:
        async with self.link.client.pipeline(transaction=True) as pipe:
            pipe.set(K.node_key(self.name), K.dumps(self._entry()), px=int(NODE_TTL * 1000))
            pipe.sadd(K.NODES, self.name)
            await pipe.execute()

    # -- for the children (through the supervisor) ---------------------------------------
    def snapshot(self) -> StoreArgs:
        """Added to the children's store snapshot: the relay user for the fronts."""
        return {"relay_user": self._relay_wire}

    def relay_url(self, addr: str, path: str) -> str:
        return (f"rtsp://{quote(RELAY_USER, safe='')}:{quote(self._secret, safe='')}@{addr}"
                f"{quote(path, safe=_PATH_SAFE)}")

    async def locate(self, path: str, routed: bool) -> Located:
        """A shard asks where to pull `path` from: {"relay": url, "node": name}
        when another node holds it, else {} (its own route, if `routed`:
        this node now holds the path while it connects)."""
        self.link.require()
        try:
            verdict, entry = await self.directory.locate(path, routed)
        except LINK_ERRORS as e:
            self.link.broken(e)
            raise StoreUnavailable() from None
        if verdict == "other" and entry and entry.get("addr") and entry.get("addr") != self.addr:
            return {"relay": self.relay_url(str(entry["addr"]), path), "node": str(entry.get("node"))}
        return {}

    def stream_event(self, shard: int, a: dict[str, Any]) -> None:
        if a.get("up"):
            self.directory.stream_up(shard, a)
        else:
            self.directory.stream_down(shard, a)

    def shard_gone(self, shard: int) -> None:
        self.directory.shard_gone(shard)

    # -- the cluster-wide API ---------------------------------------------------------------
    async def nodes(self) -> dict[str, Any]:
        """`GET /api/v1/cluster`: every live node, this one first in its own words."""
        self.link.require()
        client = self.link.client
        try:
            names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in await client.smembers(K.NODES))
            raws = await client.mget([K.node_key(n) for n in names]) if names else []
            gone = [n for n, raw in zip(names, raws) if raw is None]
            if gone:
                await client.srem(K.NODES, *gone)
        except LINK_ERRORS as e:
            self.link.broken(e)
            raise StoreUnavailable() from None
        now = time.time()
        nodes = []
        for name, raw in zip(names, raws):
            if raw is None:
                continue
            info = self._entry() if name == self.name else _json(raw)
            nodes.append({"name": name, "address": info.get("address", ""), "start_on": info.get("start_on", ""),
                          "uptime": round(max(0.0, now - _seconds(info.get("t0"), now)), 3),
                          "streams": info.get("streams", 0), "players": info.get("players", 0),
                          "relays": info.get("relays", 0), "self": name == self.name})
        return {"node": self.name, "redis": "up", "nodes": nodes}

    async def remote_streams(self) -> list[dict[str, Any]]:
        """Every other live node's streams and consumers ({node, streams, consumers})."""
        listed = await self.nodes()
        others = [n["name"] for n in listed["nodes"] if not n["self"]]

        async def one(node: str) -> dict[str, Any] | None:
            try:
                part = await self.rpc.call(node, "streams", {})
            except Exception as e:  # a node that does not answer is left out
                log.info("node %s did not list its streams: %s", node, e)
                return None
            return {"node": node, **part} if isinstance(part, dict) else None

        return [p for p in await asyncio.gather(*(one(n) for n in others)) if p is not None]

    async def forward_delete(self, path: str) -> bool:
        """DELETE of a stream another node owns: sent there (True); False if it is ours."""
        self.link.require()
        try:
            entry = await self.directory.lookup(path)
        except LINK_ERRORS as e:
            self.link.broken(e)
            raise StoreUnavailable() from None
        node = None if entry is None else entry.get("node")
        if not node or (node == self.name and entry is not None and entry.get("inst") == self.inst):
            return False
        await self.rpc.call(str(node), "delete_stream", {"path": path})
        return True

    async def forward_kick(self, node: str, cid: int) -> bool:
        return bool(await self.rpc.call(node, "kick", {"cid": cid}))

    # -- what other nodes ask ------------------------------------------------------------------
    async def _serve(self, op: str, a: dict[str, Any]) -> Any:
        if op == "streams":
            return await self.local.local_streams()
        if op == "delete_stream":
            await self.local.delete_stream(str(a["path"]))
            return True
        if op == "kick":
            return await self.local.kick(int(a["cid"]))
        if op == "takeover":
            sid = self.directory.takeover_of(a)
            if sid is not None:
                log.info("%s: a newer publisher on node %s took it; closing ours", a.get("path"), a.get("by"))
                await self.local.delete_stream(str(a["path"]), sid)
            return True
        raise NotFound(f"unknown request {op!r} between nodes")

    async def _close_local(self, path: str, stream_id: int) -> None:
        await self.local.delete_stream(path, stream_id)

    def _takeover(self, path: str, other: dict[str, Any]) -> None:
        node = other.get("node")
        if isinstance(node, str) and node:
            self.rpc.notify(node, "takeover", {"path": path, "inst": other.get("inst"), "sid": other.get("sid"),
                                               "by": self.name})


def _seconds(v: Any, default: float) -> float:
    """Another node's time field; `default` when it is no finite number."""
    try:
        t = float(v)
    except (TypeError, ValueError):
        return default
    return t if math.isfinite(t) else default


def _json(raw: Any) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}
