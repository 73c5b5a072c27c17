"""A WSP data socket held every byte it read until its JOIN.

Before JOIN, a data socket keeps what it read (a hand-over to the front
holding the channel replays it), and nothing bounded that but the first
message's deadline (10 s): WebSocket control frames are not a message, so a
client pouring unsolicited pongs at it, reading nothing, made its front hold
all of them. Now past `MAX_BEFORE_JOIN` (the bytes a hand-over may carry)
the socket is closed; a player attached before plays on.
"""

from __future__ import annotations

import time
from typing import Callable

import pytest

from hub.media.websocket import PONG
from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import MiB, FlvWatcher, RawWs, TreeMemory, problems

pytestmark = pytest.mark.e2e

FLOOD_SECONDS = 4.0
MEMORY_BOUND = 32 * MiB


def pong_flood(ws: RawWs, seconds: float) -> tuple[int, bool]:
    """Unsolicited pongs as fast as the server takes them, nothing read;
    returns (bytes sent, whether the server dropped the socket meanwhile)."""
    sent, why = ws.flood_pings(seconds, opcode=PONG)
    return sent, why is not None


def test_a_data_socket_without_join_holds_a_bounded_number_of_bytes(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    push("/live/wspjoin")
    watcher = watch(hub, "/live/wspjoin")
    tree = TreeMemory(hub)
    t0 = time.monotonic()
    clients = [RawWs(hub.port, "/streams/live/wspjoin", "data") for _ in range(2)]
    try:
        with tree.watch() as peak:
            results = [pong_flood(ws, FLOOD_SECONDS) for ws in clients]
        peak.assert_bounded(MEMORY_BOUND, f"pongs before JOIN ({results})")
        for ws, (sent, dropped) in zip(clients, results):
            assert dropped or ws.dropped_by_server(3.0), f"a data socket that sent {sent} bytes was held"
        watcher.assert_flowing(t0, context=problems(hub))
    finally:
        for ws in clients:
            ws.close()
