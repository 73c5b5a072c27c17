"""Every wait has a deadline: a WebSocket that never starts.

Found while fixing defect 6's class: an upgraded WebSocket that never sent
its first request (RTSP over WebSocket), INIT (WSP control) or JOIN (WSP
data) was held forever, silent or dribbling a frame a byte at a time. Each
must be closed 10 s after its upgrade; a player attached before keeps
playing meanwhile.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from hub.media.websocket import TEXT
from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import FlvWatcher, RawWs, problems, ws_frame

pytestmark = pytest.mark.e2e

FIRST_MESSAGE_TIMEOUT = 10.0
SLACK = 3.0


def test_websockets_that_never_start_are_closed(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    push("/live/idle")
    watcher = watch(hub, "/live/idle")
    t0 = time.monotonic()
    clients = {f"{proto}-{how}": (RawWs(hub.port, "/streams/live/idle", proto), how)
               for proto in ("rtsp", "control", "data") for how in ("silent", "dribbling")}
    closed: dict[str, float | None] = {}

    def hold(name: str, ws: RawWs, how: str) -> None:
        frame = ws_frame(b"WSP/1.1 INIT\r\nproto: rtsp\r\nseq: 1\r\n\r\n", TEXT)
        start = time.monotonic()
        ws.sock.settimeout(1.0)
        i = 0
        while time.monotonic() - start < FIRST_MESSAGE_TIMEOUT + SLACK:
            try:
                if how == "dribbling" and i < len(frame) - 1:  # never the last byte
                    ws.sock.send(frame[i:i + 1])
                    i += 1
                if not ws.sock.recv(4096):
                    closed[name] = time.monotonic() - start
                    return
            except TimeoutError:
                continue
            except OSError:
                closed[name] = time.monotonic() - start
                return
        closed[name] = None

    threads = [threading.Thread(target=hold, args=(n, ws, how)) for n, (ws, how) in clients.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(FIRST_MESSAGE_TIMEOUT + SLACK + 5)
    for ws, _how in clients.values():
        ws.close()
    held = {n: v for n, v in closed.items() if v is None}
    assert not held and len(closed) == len(clients), f"never closed: {sorted(held)}"
    assert all(v is not None and v >= FIRST_MESSAGE_TIMEOUT - 1 for v in closed.values()), closed
    watcher.assert_flowing(t0, context=problems(hub))
