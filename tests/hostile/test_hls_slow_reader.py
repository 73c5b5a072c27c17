"""A client that asks for an HLS segment and never reads it was held forever.

The front answers a segment whole (the file read into memory, written,
then the connection closed), and `close()` waits for the bytes to leave:
a client with a tiny receive window that reads nothing kept the segment
in the front's memory and its socket open for good (20 such clients of an
8 MiB segment: +168 MiB, all still there a minute later). Now a closed
connection whose client takes nothing for the stuck bound (10 s) is
dropped; one that reads gets all of it. And while they are held, clients of
one segment share its bytes (`hub.api.play.shared_files`): 16 of them cost
one copy, not 16 (+139 MiB before, each request reading the file and
joining it to the head).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Callable

from tests.conftest import HubServer
from tests.hostile.harness import MiB, TreeMemory, dropped_without_reading, read_response

CLIENTS = 4
#: The stuck bound (`hub.api.play.consumer.STUCK_SECONDS`) and some slack.
DROPPED_WITHIN = 10.0 + 5.0


def _serving_a_segment(tmp_path: Path, hub_factory: Callable[..., HubServer], size: int) -> tuple[HubServer, bytes]:
    """A tree whose front finds a TS segment file of `size` random bytes as
    `/live/big`'s segment 1: the tree and the bytes."""
    hls = tmp_path / "hls"
    hls.mkdir()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hlspath": str(hls)}))
    hub = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    folder = hls / f"ipchub-hls-{hub.proc.pid}" / "live" / "big"
    folder.mkdir(parents=True)
    data = os.urandom(size)
    (folder / "1.ts").write_bytes(data)
    return hub, data


def test_a_segment_nobody_reads_is_dropped(tmp_path: Path, hub_factory: Callable[..., HubServer]) -> None:
    hub, data = _serving_a_segment(tmp_path, hub_factory, 8 * MiB)
    request = b"GET /streams/live/big/1.ts HTTP/1.1\r\nHost: x\r\n\r\n"

    with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as reader:
        reader.sendall(request)
        status, _headers, body = read_response(reader, timeout=10)
    assert status == 200 and body == data  # a client that reads gets it all

    stalled: list[socket.socket] = []
    try:
        for _ in range(CLIENTS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", hub.port))
            s.sendall(request)
            stalled.append(s)
        deadline = time.monotonic() + DROPPED_WITHIN
        kept = [i for i, s in enumerate(stalled) if not dropped_without_reading(s, max(0.5, deadline - time.monotonic()))]
        assert not kept, f"{len(kept)} of {CLIENTS} clients that never read a segment are still held"
    finally:
        for s in stalled:
            s.close()


def test_clients_of_one_segment_share_its_bytes(tmp_path: Path, hub_factory: Callable[..., HubServer]) -> None:
    hub, _ = _serving_a_segment(tmp_path, hub_factory, 8 * MiB)
    request = b"GET /streams/live/big/1.ts HTTP/1.1\r\nHost: x\r\n\r\n"
    stalled: list[socket.socket] = []
    try:
        with TreeMemory(hub).watch() as peak:
            for _ in range(16):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", hub.port))
                s.sendall(request)
                stalled.append(s)
            time.sleep(2.0)  # all answered and queued, none dropped yet (10 s)
        peak.assert_bounded(3 * 8 * MiB, "16 clients that never read one 8 MiB segment")
    finally:
        for s in stalled:
            s.close()
