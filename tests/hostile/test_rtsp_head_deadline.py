"""Issue 12, defect 5: a client dribbling an RTSP request's header bytes
held the connection forever (the sniffer's 10 s timer stopped once the
first line looked like RTSP, and nothing timed later requests). Now the
first request must be whole 10 s after the connection's first byte (the
sniffer's deadline, carried into the RTSP engine) and every later one 10 s
after its own first byte; then 408 and the connection closes. A client that
sends whole requests, however rarely, is not touched, and a player
attached before plays on."""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.hostile.harness import FlvWatcher, problems

from .rtsp_peers import RawRtsp, request

pytestmark = pytest.mark.e2e

DEADLINE = 10.0
SLACK = 3.0  # a loaded machine
DRIBBLE = 0.4  # seconds between bytes: far from any idle timeout


def dribble(conn: RawRtsp, data: bytes, stop: threading.Event) -> None:
    for i in range(len(data)):
        if stop.is_set() or conn.closed_at is not None:
            return
        try:
            conn.send(data[i:i + 1])
        except OSError:
            return
        time.sleep(DRIBBLE)


def test_dribbled_request_heads_are_cut_at_their_deadline(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    push("/live/slow")
    watcher = watch(hub, "/live/slow")
    url = hub.rtsp_url("/live/slow")
    slow_head = b"CSeq: 1\r\nUser-Agent: " + b"s" * 200 + b"\r\n\r\n"  # 85 s at DRIBBLE
    stop = threading.Event()
    first = RawRtsp(hub.port)  # dribbles its first request
    later = RawRtsp(hub.port)  # a whole OPTIONS, then dribbles the next request
    polite = RawRtsp(hub.port)  # whole requests every 2 s: never cut
    threads: list[threading.Thread] = []
    try:
        t0 = time.monotonic()
        first.send(f"OPTIONS {url} RTSP/1.0\r\n".encode())  # enough for the sniffer to say RTSP
        threads.append(threading.Thread(target=dribble, args=(first, slow_head, stop), daemon=True))
        assert later.ask("OPTIONS", url, 1).status == 200
        t1 = time.monotonic()
        later.send(f"GET_PARAMETER {url} RTSP/1.0\r\n".encode())
        threads.append(threading.Thread(target=dribble, args=(later, slow_head, stop), daemon=True))
        for t in threads:
            t.start()
        cseq = 1
        while time.monotonic() - t0 < DEADLINE + SLACK:
            assert polite.ask("OPTIONS", url, cseq).status == 200
            cseq += 1
            time.sleep(2.0)
        assert first.wait_closed(1.0), "the first request's dribbled head still holds its connection"
        assert later.wait_closed(1.0), "a later request's dribbled head still holds its connection"
        assert first.closed_at is not None and later.closed_at is not None
        # Cut at the deadline (give or take the machine), not before.
        assert DEADLINE - 0.5 <= first.closed_at - t0 <= DEADLINE + SLACK
        assert DEADLINE - 0.5 <= later.closed_at - t1 <= DEADLINE + SLACK
        for conn in (first, later):
            assert conn.answer(1.0).status == 408
        assert polite.closed_at is None
        watcher.assert_flowing(t0, context=problems(hub))
    finally:
        stop.set()
        for conn in (first, later, polite):
            conn.close()


def test_a_slow_but_whole_request_after_a_quiet_spell_is_served(
        hub_factory: Callable[..., HubServer]) -> None:
    """The deadline counts from a request's first byte, not from the last
    answer: a keep-alive after a long silence is fine."""
    srv = hub_factory("--shards", "1", "--fronts", "1")
    url = srv.rtsp_url("/live/quiet")
    conn = RawRtsp(srv.port)
    try:
        assert conn.ask("OPTIONS", url, 1).status == 200
        time.sleep(DEADLINE + 1.0)  # quiet (the session timeout is 60 s)
        data = request("OPTIONS", url, 2)
        conn.send(data[:10])
        time.sleep(DEADLINE / 2)  # half the deadline into this request
        conn.send(data[10:])
        assert conn.answer().status == 200 and conn.closed_at is None
    finally:
        conn.close()
