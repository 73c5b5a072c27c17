"""HLS players as consumers: HLS is plain HTTP requests, so a viewer is a
(stream, client address, token) seen within the last `IDLE` seconds."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ...gotime import rfc3339nano
from ...logs import log_access
from .consumer import next_cid

IDLE = 30.0
MAX_VIEWERS = 10_000


@dataclass
class HlsViewer:
    path: str
    addr: str
    cid: int = field(default_factory=next_cid)
    start_on: str = field(default_factory=lambda: rfc3339nano(datetime.now(timezone.utc)))
    last_seen: float = field(default_factory=time.monotonic)
    inbytes: int = 0
    outbytes: int = 0
    started: float = field(default_factory=time.monotonic)

    def info(self) -> dict[str, Any]:
        return {"id": self.cid, "start_on": self.start_on, "packet_type": "TS",
                "extra": f"net=hls,{self.addr}",
                "flow": {"inbytes": self.inbytes, "outbytes": self.outbytes}}


class HlsViewers:
    def __init__(self) -> None:
        self._viewers: dict[tuple[str, str, int], HlsViewer] = {}
        self.sessions = 0  # viewers seen, for the metrics
        self.ended_out: Counter[str] = Counter()  # bytes of viewers gone, by path

    def seen(self, path: str, addr: str, token: str, inbytes: int, outbytes: int) -> None:
        # The token as a fixed-size hash: a client's long query costs nothing here.
        key = (path, addr.rsplit(":", 1)[0], hash(token))
        v = self._viewers.get(key)
        if v is None:
            if len(self._viewers) >= MAX_VIEWERS:
                self.expire()
                if len(self._viewers) >= MAX_VIEWERS:
                    return  # a flood of new viewers: served, not tracked (the table stays bounded)
            v = self._viewers[key] = HlsViewer(path, addr)
            self.sessions += 1
        v.last_seen = time.monotonic()
        v.inbytes += inbytes
        v.outbytes += outbytes

    def expire(self) -> None:
        now = time.monotonic()
        for k in [k for k, v in self._viewers.items() if now - v.last_seen > IDLE]:
            self._end(self._viewers.pop(k))

    def _end(self, v: HlsViewer) -> None:
        self.ended_out[v.path] += v.outbytes
        log_access("player", path=v.path, protocol="hls", remote=v.addr, user="",
                   duration=round(v.last_seen - v.started, 3), bytes=v.outbytes)

    def active(self) -> list[HlsViewer]:
        self.expire()
        return list(self._viewers.values())

    def kick(self, cid: int) -> bool:
        for k, v in list(self._viewers.items()):
            if v.cid == cid:
                self._end(self._viewers.pop(k))
                return True
        return False
