"""RTSP player sessions time out like publisher sessions (issue 9, item 1):
before, a player that stopped talking held its session, its connection and
its UDP ports for ever. Now `rtsp_session_timeout` seconds without a byte
from it (a request, interleaved RTCP, or RTCP to its UDP port) close it,
while players that keep talking play on."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media

from .rtsp_peers import RawRtsp, rtp_of, session_of

pytestmark = pytest.mark.e2e

TIMEOUT = 2.0
RR = bytes.fromhex("81c90007" "01020304" "11223344" "00000000" "00000000" "00000000" "00000000" "00000000")


def start_player(srv: HubServer, url: str, transport: str) -> tuple[RawRtsp, str, str]:
    conn = RawRtsp(srv.port)
    assert conn.ask("DESCRIBE", url, 1).status == 200
    setup = conn.ask("SETUP", f"{url}/trackID=0", 2, ("Transport", transport))
    assert setup.status == 200, setup
    session = session_of(setup)
    assert setup.headers["Session"] == f"{session};timeout={int(TIMEOUT)}"
    assert conn.ask("PLAY", url, 3, ("Session", session)).status == 200
    return conn, session, setup.headers["Transport"]


def test_silent_players_time_out_and_talking_ones_do_not(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtsp_session_timeout": TIMEOUT}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    url = srv.rtsp_url("/live/t")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    rtp_port = udp.getsockname()[1]  # RTP comes here; RTCP would go to +1 (unbound: dropped)
    stop = threading.Event()
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/t")
        silent, _, _ = start_player(srv, url, "RTP/AVP/TCP;unicast;interleaved=0-1")
        chatty, chatty_session, _ = start_player(srv, url, "RTP/AVP/TCP;unicast;interleaved=0-1")
        rtcp, _, answer = start_player(srv, url, f"RTP/AVP;unicast;client_port={rtp_port}-{rtp_port + 1}")
        server_rtcp = int(answer.split("server_port=")[1].split("-")[1].split(";")[0])

        def talk() -> None:
            cseq = 10
            while not stop.wait(TIMEOUT / 4):
                chatty.send(f"GET_PARAMETER {url} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {chatty_session}\r\n\r\n"
                            .encode())
                udp.sendto(RR, ("127.0.0.1", server_rtcp))  # receiver reports of the UDP player
                cseq += 1

        talker = threading.Thread(target=talk, daemon=True)
        t0 = time.monotonic()
        talker.start()
        try:
            assert silent.wait_closed(TIMEOUT + 3.0), "a silent player was never timed out"
            assert silent.closed_at is not None and silent.closed_at - t0 >= TIMEOUT - 0.5
            assert rtp_of(silent.frames, 0), "the silent player did get RTP before"
            time.sleep(TIMEOUT * 1.5)
            assert chatty.closed_at is None and rtcp.closed_at is None
            n = len(rtp_of(chatty.frames, 0))
            time.sleep(0.5)
            assert len(rtp_of(chatty.frames, 0)) > n  # still playing
            udp.settimeout(2.0)
            assert udp.recv(2048)[0] >> 6 == 2  # the UDP player still gets RTP
            # The UDP player goes quiet: its session ends too.
            stop.set()
            talker.join(5)
            assert rtcp.wait_closed(TIMEOUT + 3.0), "a UDP player was never timed out"
        finally:
            stop.set()
            udp.close()
            for conn in (silent, chatty, rtcp):
                conn.close()
