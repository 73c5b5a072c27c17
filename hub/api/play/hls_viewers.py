"""HLS players as consumers: HLS is plain HTTP requests, so a viewer is a
(stream, client address, token) seen within the last `IDLE` seconds.

A new viewer is admitted like any player (`FrontContext.admit_player`: the
operator's limits, drain) and holds its grant until it goes idle, is
kicked, or the front drains; a sweep runs every `IDLE / 2` seconds while
there are viewers, none at rest.

The table holds at most `MAX_VIEWERS`. Tokens cost a client nothing to
invent, so a full table does not refuse the next viewer (one client could
then shut every new viewer out for `IDLE` seconds): it ends the viewer
seen longest ago. A real viewer asks every few seconds, so it is the last
to go; if it is ended all the same, its next request makes it a viewer
again (a new admission) and it is served throughout."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from ...gotime import rfc3339nano
from ...logs import log_access
from .consumer import next_cid

IDLE = 30.0
MAX_VIEWERS = 10_000


class Grant(Protocol):
    """A player's admission (`hub.api.context.PlayerTicket`)."""

    def release(self) -> None: ...


@dataclass
class HlsViewer:
    path: str
    addr: str
    key: tuple[str, str, int] = ("", "", 0)
    cid: int = field(default_factory=next_cid)
    start_on: str = field(default_factory=lambda: rfc3339nano(datetime.now(timezone.utc)))
    last_seen: float = field(default_factory=time.monotonic)
    inbytes: int = 0
    outbytes: int = 0
    started: float = field(default_factory=time.monotonic)
    ticket: Grant | None = None

    def info(self) -> dict[str, Any]:
        return {"id": self.cid, "start_on": self.start_on, "packet_type": "TS",
                "extra": f"net=hls,{self.addr}",
                "flow": {"inbytes": self.inbytes, "outbytes": self.outbytes}}


class HlsViewers:
    def __init__(self) -> None:
        # Least recently seen first (`seen` moves a viewer to the end).
        self._viewers: OrderedDict[tuple[str, str, int], HlsViewer] = OrderedDict()
        self.sessions = 0  # viewers seen, for the metrics
        self.evicted = 0  # viewers ended early because the table was full
        self.ended_out: Counter[str] = Counter()  # bytes of viewers gone, by path
        self._sweep: asyncio.TimerHandle | None = None

    @staticmethod
    def tree_key(path: str, addr: str, token: str) -> str:
        """The viewer's name for the supervisor, the same on every front (a
        stable digest: `hash` differs between interpreters)."""
        digest = hashlib.blake2b(f"{path}\n{addr.rsplit(':', 1)[0]}\n{token}".encode("utf-8", "replace"),
                                 digest_size=16).hexdigest()
        return "hls:" + digest

    @staticmethod
    def _key(path: str, addr: str, token: str) -> tuple[str, str, int]:
        # The token as a fixed-size hash: a client's long query costs nothing here.
        return path, addr.rsplit(":", 1)[0], hash(token)

    def get(self, path: str, addr: str, token: str) -> HlsViewer | None:
        """The viewer these requests come from, if known (one idle but not
        swept yet still holds its grant: it goes on with it)."""
        return self._viewers.get(self._key(path, addr, token))

    def add(self, path: str, addr: str, token: str, ticket: Grant | None) -> HlsViewer:
        """A new viewer holding `ticket`; if the same viewer was added
        meanwhile (parallel requests), that one, and `ticket` is given back."""
        key = self._key(path, addr, token)
        v = self._viewers.get(key)
        if v is not None:
            if ticket is not None:
                ticket.release()
            return v
        if len(self._viewers) >= MAX_VIEWERS:
            self.expire()
            while len(self._viewers) >= MAX_VIEWERS:  # full of live viewers: the stalest goes
                self._end(self._viewers.popitem(last=False)[1])
                self.evicted += 1
        v = self._viewers[key] = HlsViewer(path, addr, key, ticket=ticket)
        self.sessions += 1
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(IDLE / 2, self._swept)
        return v

    def seen(self, v: HlsViewer, inbytes: int, outbytes: int) -> None:
        if self._viewers.get(v.key) is v:
            self._viewers.move_to_end(v.key)
        v.last_seen = time.monotonic()
        v.inbytes += inbytes
        v.outbytes += outbytes

    def _swept(self) -> None:
        self._sweep = None
        self.expire()
        if self._viewers:
            self._sweep = asyncio.get_running_loop().call_later(IDLE / 2, self._swept)

    def expire(self) -> None:
        """End the viewers idle for over `IDLE` s: a run from the table's
        stale end (the table is in the order viewers were last seen)."""
        now = time.monotonic()
        while self._viewers:
            v = next(iter(self._viewers.values()))
            if now - v.last_seen <= IDLE:
                break
            self._viewers.popitem(last=False)
            self._end(v)

    def _end(self, v: HlsViewer) -> None:
        self.ended_out[v.path] += v.outbytes
        if v.ticket is not None:
            v.ticket.release()
            v.ticket = None
        log_access("player", path=v.path, protocol="hls", remote=v.addr, user="",
                   duration=round(v.last_seen - v.started, 3), bytes=v.outbytes)

    def release_grants(self) -> None:
        """The front drains: viewers hold no connection to wait for, so their
        grants go back now (they are served while they still come)."""
        for v in self._viewers.values():
            if v.ticket is not None:
                v.ticket.release()
                v.ticket = None

    def active(self) -> list[HlsViewer]:
        self.expire()
        return list(self._viewers.values())

    def kick(self, cid: int) -> bool:
        for k, v in list(self._viewers.items()):
            if v.cid == cid:
                self._end(self._viewers.pop(k))
                return True
        return False

    def close(self) -> None:
        """The front stops: every viewer ends (grants released)."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for k in list(self._viewers):
            self._end(self._viewers.pop(k))
