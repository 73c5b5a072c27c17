"""Defect 4's class on plain RTSP: a client that pipelines requests and
never reads the answers. The engine answers one request at a time, and the
glue stops taking requests (and reading) while the answers do not drain,
so the answers queued for it stay bounded; with nothing read from it, its
session times out. The tree's memory stays bounded, a player attached
before plays on."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media
from tests.hostile.harness import MiB, FlvWatcher, assert_floods_bounded

pytestmark = pytest.mark.e2e

FLOOD_SECONDS = 4.0
TIMEOUT = 3.0  # rtsp_session_timeout for this tree
MEMORY_BOUND = 32 * MiB


def flood(port: int, url: str, seconds: float, out: dict[str, int], key: str) -> socket.socket:
    """Pipelined OPTIONS (answers ~3x the request's size), never reading."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    batch = b"".join(f"OPTIONS {url} RTSP/1.0\r\nCSeq: {i}\r\n\r\n".encode() for i in range(200))
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sent += s.send(batch)
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    out[key] = sent
    return s


def test_pipelining_clients_that_never_read_are_bounded(
        hub_factory: Callable[..., HubServer], tmp_path: Path, watch: Callable[..., FlvWatcher]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtsp_session_timeout": TIMEOUT}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    url = srv.rtsp_url("/live/flood")
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/flood")
        watcher = watch(srv, "/live/flood")
        sent: dict[str, int] = {}
        assert_floods_bounded(
            srv, watcher, [lambda k=k: flood(srv.port, url, FLOOD_SECONDS, sent, k) for k in ("a", "b", "c")],
            FLOOD_SECONDS, MEMORY_BOUND, TIMEOUT, f"RTSP request floods ({sent})")
