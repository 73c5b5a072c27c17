"""Coalesced wake-ups: at most one notice per front per loop turn.

Readers do not poll. When a stream's ring gets new entries, the shard marks
the stream; the first mark in a loop turn schedules one flush, which sends
each front that reads any marked stream a single `wake` notice carrying
{stream id: write sequence} for all of them.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Hashable, Iterable


class WakeCoalescer:
    def __init__(self, send: Callable[[Hashable, dict[int, int]], None],
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._send = send
        self._loop = loop or asyncio.get_event_loop()
        self._pending: dict[int, tuple[int, Iterable[Hashable]]] = {}
        self._scheduled = False

    def mark(self, stream_id: int, write_seq: int, readers: Iterable[Hashable]) -> None:
        self._pending[stream_id] = (write_seq, readers)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        per_reader: dict[Hashable, dict[int, int]] = {}
        for sid, (seq, readers) in self._pending.items():
            for r in readers:
                per_reader.setdefault(r, {})[sid] = seq
        self._pending.clear()
        for r, streams in per_reader.items():
            self._send(r, streams)
