"""PAUSE and PLAY again do not send the cached GOP again.

A player's first PLAY starts with the stream's cached GOP (a picture at
once). Before, every PLAY after a PAUSE packetised and sent the whole GOP
again: a ~200-byte PAUSE/PLAY pair made the front send megabytes of RTP,
over UDP with no back-pressure at all, so a client that never reads its
UDP port kept the front's loop busy and its own host flooded (a 6 Mbit/s
stream with long GOPs: ~10 ms of the loop per pair, 100 pairs a second).
Now a PLAY after PAUSE resumes live; only the first PLAY sends the GOP."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media

from .rtsp_peers import RawRtsp, request, session_of

pytestmark = pytest.mark.e2e

SECONDS = 2.0


def count_datagrams(sock: socket.socket, until: float) -> int:
    """What is queued on `sock`, and what comes until `until`."""
    n = 0
    while True:
        try:
            sock.recv(2048)
            n += 1
        except BlockingIOError:
            if time.monotonic() >= until:
                return n
            time.sleep(0.005)


def test_pause_and_play_again_resume_live_without_the_gop(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1")
    url = srv.rtsp_url("/live/pp")
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    loop_sock, plain_sock = socks
    conns: list[RawRtsp] = []
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/pp")
        time.sleep(0.5)  # a GOP in the cache
        try:
            sessions = []
            for sock in socks:
                conn = RawRtsp(srv.port)
                conns.append(conn)
                assert conn.ask("DESCRIBE", url, 1).status == 200
                port = sock.getsockname()[1]
                setup = conn.ask("SETUP", f"{url}/trackID=0", 2,
                                 ("Transport", f"RTP/AVP;unicast;client_port={port}-{port + 1}"))
                assert setup.status == 200
                sessions.append(session_of(setup))
            looper, plain = conns
            assert plain.ask("PLAY", url, 3, ("Session", sessions[1])).status == 200
            assert looper.ask("PLAY", url, 3, ("Session", sessions[0])).status == 200
            time.sleep(0.5)
            for s in socks:  # what the first PLAY brought: the GOP and live packets
                count_datagrams(s, time.monotonic() + 0.1)
            t0 = time.monotonic()
            cseq = 4
            pairs = 0
            while time.monotonic() - t0 < SECONDS:
                looper.send(b"".join(request(m, url, cseq + i, ("Session", sessions[0]))
                                     for i, m in enumerate(["PAUSE", "PLAY"] * 8)))
                for _ in range(16):
                    assert looper.answer().status == 200
                cseq += 16
                pairs += 8
            until = time.monotonic()
            looped = count_datagrams(loop_sock, until + 0.2)
            live = count_datagrams(plain_sock, until + 0.2)
            assert pairs >= 100 and live > 25, (pairs, live)
            # Live packets only (paused half the time): at most what a plain player got.
            assert looped <= live, (f"{looped} datagrams for {pairs} PAUSE/PLAY pairs in "
                                         f"{until - t0:.1f} s; a plain player got {live}")
            assert looper.ask("GET_PARAMETER", url, cseq, ("Session", sessions[0])).status == 200
        finally:
            for s in socks:
                s.close()
            for c in conns:
                c.close()
