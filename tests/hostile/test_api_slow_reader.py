"""Every per-client write path is bounded: the REST API's.

Found with defect 4's class: a client pipelining API requests and never
reading its answers. uvicorn stops reading it once its answers queue up
(memory stays bounded), but then held the connection forever: no one
gave up on a client that never drains. It must be dropped like a stuck
player (10 s), the tree's memory bounded meanwhile, and a player attached
before must keep playing.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import MiB, FlvWatcher, TreeMemory, problems

pytestmark = pytest.mark.e2e

STUCK_SECONDS = 10.0
MEMORY_BOUND = 16 * MiB


def test_a_pipelining_client_that_never_reads_is_bounded_and_dropped(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher], tree: TreeMemory) -> None:
    push("/live/api")
    watcher = watch(hub, "/live/api")
    t0 = time.monotonic()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", hub.port))
    request = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    sent = 0
    dropped_after = None
    try:
        with tree.watch() as peak:
            s.settimeout(0.2)
            while time.monotonic() - t0 < STUCK_SECONDS + 8:
                try:
                    sent += s.send(request * 64)
                except (socket.timeout, BlockingIOError):
                    pass  # the server stopped reading us: good, go on trying
                except OSError:
                    dropped_after = time.monotonic() - t0
                    break
                time.sleep(0.05)
        peak.assert_bounded(MEMORY_BOUND, f"{sent // len(request)} pipelined requests never read")
        assert dropped_after is not None, f"a client that never reads was held ({sent} bytes of requests taken)"
        watcher.assert_flowing(t0, context=problems(hub))
    finally:
        s.close()
