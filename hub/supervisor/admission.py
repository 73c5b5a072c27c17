"""Operator limits, decided in one place for the whole tree.

Players of one stream are spread over the fronts (the kernel picks a front
per connection) and publishers over the shards, so no single child can
count them. The supervisor does: a front asks `admit` before a player joins
or a publisher's connection is handed to its shard, and the holder of a
grant (the front for a player, the owning shard for a publisher) sends
`release` when the session ends. A child that dies releases everything it
held. The checks run once per session start, never per packet.

Without a limit set, fronts send `admitted` notices instead of asking (no
round trip), so the counts are right when a reload turns a limit on.

An HLS viewer is one player however many fronts its requests land on:
each front asks with the viewer's key (`viewer`), the first grant counts,
later ones from other fronts only add a holder, and the grant goes when
its last holder releases it.

`connections_per_ip` counts player and publisher sessions per remote
address, an IPv6 one by its /64 (`hub.client_key`). A TCP connection that
never becomes one, such as an API request, is not counted: its life is too
short to hold a slot and is bounded by the fronts' request deadlines.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable

from ..client_key import client_key
from ..config import LimitsConfig
from ..errors import BadRequest, Draining, LimitReached

log = logging.getLogger("hub.supervisor.admission")

PLAYER = "player"
PUBLISHER = "publisher"

#: (kind, path, remote address)
Grant = tuple[str, str, str]


class Admission:
    def __init__(self, limits: Callable[[], LimitsConfig],
                 on_refusal: Callable[[str], None] | None = None) -> None:
        self._limits = limits
        self._on_refusal = on_refusal
        self.draining = False
        self.players = 0
        self.publishers = 0
        self.players_by_path: Counter[str] = Counter()
        self.by_ip: Counter[str] = Counter()
        self.held: dict[str, Counter[Grant]] = {}
        #: HLS viewers by key: their one grant and its holders (fronts)
        self.viewers: dict[str, tuple[Grant, Counter[str]]] = {}
        #: called when the last player or publisher leaves (the drain waits on it)
        self.on_empty: Callable[[], None] | None = None

    @property
    def empty(self) -> bool:
        return self.players == 0 and self.publishers == 0

    def admit(self, holder: str, kind: str, path: str, ip: str, check: bool = True,
              viewer: str | None = None) -> None:
        """Count a new session held by `holder`, or raise LimitReached (the
        limit named in the message) or Draining; a refusal changes nothing.
        A `viewer` already counted only gains `holder` as a holder."""
        if kind not in (PLAYER, PUBLISHER):
            raise BadRequest(f"unknown session kind {kind!r}")
        ip = client_key(ip)
        shared = self.viewers.get(viewer) if viewer else None
        if shared is not None:
            shared[1][holder] += 1
            return
        if check:
            if self.draining:
                raise Draining("draining: not taking new sessions")
            limit = self._over(kind, path, ip)
            if limit is not None:
                if self._on_refusal is not None:
                    self._on_refusal(limit)
                raise LimitReached(f"limit {limit} reached")
        grant = (kind, path, ip)
        if viewer:
            self.viewers[viewer] = (grant, Counter({holder: 1}))
        else:
            self.held.setdefault(holder, Counter())[grant] += 1
        self._add(grant, 1)

    def _over(self, kind: str, path: str, ip: str) -> str | None:
        lim = self._limits()
        if lim.connections_per_ip and self.by_ip[ip] >= lim.connections_per_ip:
            return "connections_per_ip"
        if kind == PLAYER:
            if lim.players_per_stream and self.players_by_path[path] >= lim.players_per_stream:
                return "players_per_stream"
            if lim.players and self.players >= lim.players:
                return "players"
        elif lim.publishers and self.publishers >= lim.publishers:
            return "publishers"
        return None

    def release(self, holder: str, kind: str, path: str, ip: str, viewer: str | None = None) -> None:
        """A session ended; a release of something `holder` does not hold is ignored."""
        if viewer:
            self._let_go(viewer, holder, 1)
            return
        held = self.held.get(holder)
        grant = (kind, path, client_key(ip))
        if held is None or held[grant] <= 0:
            return
        held[grant] -= 1
        if not held[grant]:
            del held[grant]
        self._add(grant, -1)

    def forget(self, holder: str) -> None:
        """`holder` is gone (a child exited): its sessions went with it."""
        held = self.held.pop(holder, None)
        if held:
            for grant, n in held.items():
                self._add(grant, -n)
            log.info("%s ended holding %d sessions", holder, sum(held.values()))
        for viewer in [v for v, (_, holders) in self.viewers.items() if holder in holders]:
            self._let_go(viewer, holder, self.viewers[viewer][1][holder])

    def _let_go(self, viewer: str, holder: str, n: int) -> None:
        shared = self.viewers.get(viewer)
        if shared is None or shared[1][holder] <= 0:
            return
        grant, holders = shared
        holders[holder] -= n
        if holders[holder] <= 0:
            del holders[holder]
        if not holders:
            del self.viewers[viewer]
            self._add(grant, -1)

    def _add(self, grant: Grant, n: int) -> None:
        kind, path, ip = grant
        self.by_ip[ip] += n
        if not self.by_ip[ip]:
            del self.by_ip[ip]
        if kind == PLAYER:
            self.players += n
            self.players_by_path[path] += n
            if not self.players_by_path[path]:
                del self.players_by_path[path]
        else:
            self.publishers += n
        if n < 0 and self.on_empty is not None and self.empty:
            self.on_empty()
