"""Defect 4: pongs queued without bound.

A WebSocket client that floods pings and never reads grew a front without
limit (300 MiB seen): pongs bypassed the back-pressure that media writes
have. Every WebSocket the server speaks (WS-FLV, RTSP over WebSocket, WSP
control and data) is flooded at once for a few seconds by clients with a
4 KiB receive window: the tree's memory must stay bounded, each flooder
must be dropped (its reading pauses once its replies queue up; not drained
for the stuck bound, 10 s, it is dropped), and a player attached before
must keep playing.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import MiB, FlvWatcher, RawWs, TreeMemory, problems

pytestmark = pytest.mark.e2e

FLOOD_SECONDS = 4.0
#: The server drops a client whose replies have not drained for 10 s.
DROPPED_WITHIN = 10.0 + 5.0
#: Peak growth of the whole tree allowed while four clients flood (each
#: client's queue is bounded at about a megabyte; the rest is noise).
MEMORY_BOUND = 32 * MiB
TARGETS = {
    "ws-flv": ("/ws/live/flood.flv", None),
    "rtsp-ws": ("/streams/live/flood", "rtsp"),
    "wsp-control": ("/streams/live/flood", "control"),
    "wsp-data": ("/streams/live/flood", "data"),
}


def test_ping_floods_that_never_read_are_bounded_and_dropped(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher], tree: TreeMemory) -> None:
    push("/live/flood")
    watcher = watch(hub, "/live/flood")
    clients = {name: RawWs(hub.port, target, proto, rcvbuf=4096) for name, (target, proto) in TARGETS.items()}
    outcome: dict[str, tuple[int, str | None]] = {}
    t0 = time.monotonic()
    try:
        with tree.watch() as peak:
            threads = [threading.Thread(target=lambda n=n, c=c: outcome.__setitem__(n, c.flood_pings(FLOOD_SECONDS)))
                       for n, c in clients.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join(FLOOD_SECONDS + 10)
        sent = {n: f"{outcome[n][0] / MiB:.0f} MiB" for n in outcome}
        peak.assert_bounded(MEMORY_BOUND, f"ping floods ({sent})")
        deadline = time.monotonic() + DROPPED_WITHIN
        kept = [n for n, c in clients.items() if not c.dropped_by_server(max(0.5, deadline - time.monotonic()))]
        assert not kept, f"flooders never dropped: {kept} (sent {sent})"
        watcher.assert_flowing(t0, context=problems(hub))
    finally:
        for c in clients.values():
            c.close()
