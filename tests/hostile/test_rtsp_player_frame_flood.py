"""A player's interleaved `$` frames are bounded in rate.

A player sends `$` frames only for its RTCP receiver reports (a few a
second); the front reads and drops them. Each costs the loop about the
same however small it is: before, a client streaming 4-byte empty frames
made the front spend ~450 ns a byte (118 ms a 256 KiB read) for as long as
it liked, the connection never closed. Now a token bucket
(PLAYER_FRAME_BURST, refilled at PLAYER_FRAME_RATE a second) closes a
connection that sends more, and players elsewhere play on."""

from __future__ import annotations

import socket
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import FlvWatcher, problems

from .rtsp_peers import RawRtsp

pytestmark = pytest.mark.e2e

EMPTY_FRAMES = b"$\x01\x00\x00" * 16384  # 64 KiB of empty RTCP frames


def test_a_player_flooding_interleaved_frames_is_closed_and_others_play_on(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    url = hub.rtsp_url("/live/ff")
    push("/live/ff")
    watcher = watch(hub, "/live/ff")
    conn = RawRtsp(hub.port)
    try:
        session = conn.play_tcp(url)
        # Receiver reports at a player's pace are fine.
        for _ in range(20):
            conn.send(b"$\x01\x00\x00")
        assert conn.ask("GET_PARAMETER", url, 4, ("Session", session)).status == 200
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 5.0 and conn.closed_at is None:
            try:  # never blocking: the reader thread shares the socket
                sent += conn.sock.send(EMPTY_FRAMES, socket.MSG_DONTWAIT)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
        assert conn.wait_closed(2.0), f"still open after {sent} bytes of empty frames"
        assert conn.closed_at is not None and conn.closed_at - t0 < 1.0
        watcher.assert_flowing(t0, context=problems(hub))
    finally:
        conn.close()
