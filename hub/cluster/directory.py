"""The stream directory: which node owns each live stream, in Redis.

An entry `hub:stream:<path>` is a JSON object — node, instance, stream id,
address, kind (`publish`, `pull`, or `pending` while a route pull connects),
codecs, start — with a TTL (`ENTRY_TTL`) that the owner refreshes every
`REFRESH_EVERY` seconds while the stream is live. A node that dies stops
refreshing, and its entries are gone within the TTL.

The shards tell their supervisor when a stream goes live or ends
(`stream_up` / `stream_down`); this module keeps what the node owns and
brings Redis in line with it — the wanted state, not a queue of commands, so
an outage loses nothing: after a reconnect every entry is written again.

One publisher per path in the whole cluster, as on one node where a new
publisher replaces the old one: a publisher's claim takes the entry over and
the previous owner is told to close its stream (`takeover`). A route pull
only claims a path nobody holds (`ifabsent`), and closes if it lost the race.
After an outage two nodes may both hold a stream: the newer publisher keeps
it, as on one node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..errors import HubError
from . import keys as K
from .link import LINK_ERRORS, RedisLink

log = logging.getLogger("hub.cluster.directory")

ENTRY_TTL = 6.0  # a dead node's streams are forgotten within this (the issue asks <= 10 s)
REFRESH_EVERY = 2.0
PENDING_TTL = 15.0  # a route pull's claim while it connects (connect 5 s + the RTSP handshake)
#: Streams ended while Redis was away whose entries still wait to be removed.
MAX_RELEASED = 10_000

# Every script reads an entry with `_DECODE`: one that is not a JSON object
# (written by something else than a node of ours) is another's, never an
# error. A script error would count as Redis being away and take the link down.
_DECODE = """
local function entry(v)
  local ok, o = pcall(cjson.decode, v)
  if ok and type(o) == 'table' then return o end
  return {}
end
"""

# KEYS[1]: entry; ARGV: entry json, mode (take | ifabsent), ttl ms, node, inst
_CLAIM = _DECODE + """
local old = redis.call('GET', KEYS[1])
if old then
  local o = entry(old)
  if o.node == ARGV[4] and o.inst == ARGV[5] then
    old = false
  elseif ARGV[2] == 'ifabsent' then
    return {'lost', old}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
if old then return {'took', old} end
return {'ok'}
"""

# KEYS: entries; ARGV: ttl ms, node, inst, then one entry json per key.
# Ours: TTL renewed; absent (expired while away): written again; another's: returned.
_REFRESH = _DECODE + """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, ARGV[3 + i], 'PX', ARGV[1])
    out[i] = 'set'
  else
    local o = entry(v)
    if o.node == ARGV[2] and o.inst == ARGV[3] then
      redis.call('PEXPIRE', key, ARGV[1])
      out[i] = 'ok'
    else
      out[i] = v
    end
  end
end
return out
"""

# KEYS[1]: entry; ARGV: node, inst, stream id. Only our own entry of that stream.
_RELEASE = _DECODE + """
local v = redis.call('GET', KEYS[1])
if v then
  local o = entry(v)
  if o.node == ARGV[1] and o.inst == ARGV[2] and tostring(o.sid) == ARGV[3] then
    return redis.call('DEL', KEYS[1])
  end
end
return 0
"""

# KEYS[1]: entry; ARGV: node, inst, routed (1/0), pending entry json, pending ttl ms
_LOCATE = _DECODE + """
local v = redis.call('GET', KEYS[1])
if v then
  local o = entry(v)
  if o.node == ARGV[1] and o.inst == ARGV[2] then return {'mine', v} end
  return {'other', v}
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  return {'claimed'}
end
return {'none'}
"""


@dataclass
class OwnedStream:
    """A stream this node owns (a publisher's or a route pull's)."""

    path: str
    stream_id: int
    shard: int
    kind: str  # "publish" or "pull"
    entry: str  # its directory entry (JSON)
    t: float  # when it went live (unix time): the newer publisher wins
    claimed: bool = False


#: Close this node's stream of a path (its id), e.g. a newer publisher took the path.
CloseLocal = Callable[[str, int], Awaitable[None]]
#: Tell another node its entry was taken over (path, its entry).
Takeover = Callable[[str, dict[str, Any]], None]


class StreamDirectory:
    def __init__(self, link: RedisLink, node: str, inst: str, addr: str,
                 close_local: CloseLocal, takeover: Takeover) -> None:
        self.link = link
        self.node = node
        self.inst = inst
        self.addr = addr
        self._close_local = close_local
        self._takeover = takeover
        self.owned: dict[str, OwnedStream] = {}
        self.relays: dict[int, set[int]] = {}  # shard -> ids of the streams it relays from other nodes
        self._released: dict[str, int] = {}  # path -> id of our ended stream whose entry is to go
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        client = link.client
        self._claim = client.register_script(_CLAIM)
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)
        self._locate = client.register_script(_LOCATE)

    @property
    def relay_count(self) -> int:
        return sum(len(s) for s in self.relays.values())

    # -- what the shards say ------------------------------------------------------
    def stream_up(self, shard: int, a: dict[str, Any]) -> None:
        path, sid, kind = str(a["path"]), int(a["sid"]), str(a["kind"])
        if kind == "relay":
            self.relays.setdefault(shard, set()).add(sid)
            return
        t = float(a.get("t") or time.time())
        entry = K.dumps({"node": self.node, "inst": self.inst, "sid": sid, "addr": self.addr, "kind": kind,
                         "codecs": list(a.get("codecs") or []), "start_on": str(a.get("start_on", "")),
                         "t": t})
        self.owned[path] = OwnedStream(path, sid, shard, kind, entry, t)
        self._mark(path)

    def stream_down(self, shard: int, a: dict[str, Any]) -> None:
        path, sid = str(a["path"]), int(a["sid"])
        self.relays.get(shard, set()).discard(sid)
        owned = self.owned.get(path)
        if owned is None or owned.stream_id != sid or owned.shard != shard:
            return
        del self.owned[path]
        if len(self._released) < MAX_RELEASED:  # past it, the TTL removes the entry
            self._released[path] = sid
        self._mark(path)

    def shard_gone(self, shard: int) -> None:
        """A shard exited: its streams ended with it."""
        self.relays.pop(shard, None)
        for owned in [o for o in self.owned.values() if o.shard == shard]:
            self.stream_down(shard, {"path": owned.path, "sid": owned.stream_id})

    def _mark(self, path: str) -> None:
        self._dirty.add(path)
        self._wake.set()

    def mark_all(self) -> None:
        """After a reconnect: write every entry again (they may have expired)."""
        for owned in self.owned.values():
            owned.claimed = False
        self._dirty.update(self.owned)
        self._dirty.update(self._released)
        self._wake.set()

    # -- bringing Redis in line ---------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.link.up:
                continue  # mark_all() wakes us when it is back
            while self._dirty:
                path = self._dirty.pop()
                try:
                    await self._sync(path)
                except LINK_ERRORS as e:
                    self._dirty.add(path)
                    self.link.broken(e)
                    break

    async def _sync(self, path: str) -> None:
        owned = self.owned.get(path)
        if owned is None:
            sid = self._released.pop(path, None)
            if sid is not None:
                await self._release(keys=[K.stream_key(path)], args=[self.node, self.inst, sid])
            return
        self._released.pop(path, None)
        if owned.claimed:
            return
        mode = "take" if owned.kind == "publish" else "ifabsent"
        reply = await self._claim(keys=[K.stream_key(path)],
                                  args=[owned.entry, mode, int(ENTRY_TTL * 1000), self.node, self.inst])
        if self.owned.get(path) is not owned:
            return  # replaced or ended meanwhile: that is in _dirty already
        verdict = _text(reply[0])
        if verdict == "lost":
            other = _entry(reply[1])
            log.info("%s: held by node %s; closing this node's %s", path, other.get("node"), owned.kind)
            await self._close(path, owned.stream_id)
            return
        owned.claimed = True
        if verdict == "took":
            other = _entry(reply[1])
            log.info("%s: taken over from node %s", path, other.get("node"))
            self._takeover(path, other)

    async def refresh(self) -> None:
        """Renew our entries' TTL (the periodic tick); settle conflicts."""
        items = [o for o in self.owned.values() if o.claimed]
        if not items:
            return
        reply = await self._refresh(keys=[K.stream_key(o.path) for o in items],
                                    args=[int(ENTRY_TTL * 1000), self.node, self.inst, *(o.entry for o in items)])
        for owned, result in zip(items, reply):
            text = _text(result)
            if text in ("ok", "set") or self.owned.get(owned.path) is not owned:
                continue
            other = _entry(result)
            newer = other.get("kind") == "pending" or _time(other.get("t")) < owned.t
            if owned.kind == "publish" and newer:
                owned.claimed = False  # ours is the newer publisher: take the path over
                self._mark(owned.path)
            else:
                log.info("%s: node %s holds it now; closing this node's %s", owned.path, other.get("node"),
                         owned.kind)
                await self._close(owned.path, owned.stream_id)

    async def _close(self, path: str, stream_id: int) -> None:
        """Close our stream of a path another node holds. Its shard may be
        restarting or slow to answer: that must not end the directory's task
        or the node's tick. A claimed stream's close is tried again by the
        next refresh; a lost claim's by the next reconnect (`mark_all`)."""
        try:
            await self._close_local(path, stream_id)
        except HubError as e:
            log.warning("%s: could not close this node's stream %d: %s", path, stream_id, e)

    def takeover_of(self, a: dict[str, Any]) -> int | None:
        """Another node took a path we held: the id of our stream to close, if still ours."""
        owned = self.owned.get(str(a.get("path")))
        if owned is None or str(a.get("inst")) != self.inst or owned.stream_id != a.get("sid"):
            return None
        return owned.stream_id

    async def locate(self, path: str, routed: bool) -> tuple[str, dict[str, Any] | None]:
        """Where `path` lives: ("other", entry), ("mine", entry), ("claimed", None)
        when a route may pull it here (a pending entry now holds it), or ("none", None)."""
        pending = K.dumps({"node": self.node, "inst": self.inst, "sid": 0, "addr": self.addr,
                           "kind": "pending", "codecs": [], "start_on": "", "t": time.time()})
        reply = await self._locate(keys=[K.stream_key(path)],
                                   args=[self.node, self.inst, "1" if routed else "0", pending,
                                         int(PENDING_TTL * 1000)])
        verdict = _text(reply[0])
        return verdict, (_entry(reply[1]) if len(reply) > 1 else None)

    async def lookup(self, path: str) -> dict[str, Any] | None:
        raw = await self.link.client.get(K.stream_key(path))
        return None if raw is None else _entry(raw)

    async def release_all(self) -> None:
        """Leaving: our entries go now, not after their TTL."""
        for owned in list(self.owned.values()):
            await self._release(keys=[K.stream_key(owned.path)], args=[self.node, self.inst, owned.stream_id])


def _time(v: Any) -> float:
    """Another entry's start time; one that is no number counts as the oldest."""
    try:
        t = float(v or 0)
    except (TypeError, ValueError):
        return 0.0
    return t if math.isfinite(t) else 0.0


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entry(raw: Any) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}
