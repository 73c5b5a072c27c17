"""A UDP player's session is kept alive by RTCP from the ports it declared,
and its sender reports go to the RTCP port it declared.

Before, RTCP from any port of the player's host reached `on_feedback`: a
neighbour behind the same NAT (or any program on that host) that sent a
datagram to the server's RTCP port every few seconds kept a gone player's
session, and the stream it sends to that host, alive for ever. And the
sender reports went to `client_port`'s first + 1, not to the RTCP port
the player declared. Now only the declared ports count (RTCP's, or RTP's
for clients that send both from one socket, on the player's host), and
the reports go where the player said."""

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

from .rtsp_peers import RawRtsp, session_of

pytestmark = pytest.mark.e2e

TIMEOUT = 2.0
RR = bytes.fromhex("81c90007" "01020304" "11223344" "00000000" "00000000" "00000000" "00000000" "00000000")
SR = 200


def udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    return s


def start(srv: HubServer, url: str, rtp: socket.socket, rtcp: socket.socket) -> tuple[RawRtsp, int]:
    conn = RawRtsp(srv.port)
    assert conn.ask("DESCRIBE", url, 1).status == 200
    ports = f"{rtp.getsockname()[1]}-{rtcp.getsockname()[1]}"  # not adjacent
    setup = conn.ask("SETUP", f"{url}/trackID=0", 2, ("Transport", f"RTP/AVP;unicast;client_port={ports}"))
    assert setup.status == 200, setup
    assert conn.ask("PLAY", url, 3, ("Session", session_of(setup))).status == 200
    server_rtcp = int(setup.headers["Transport"].split("server_port=")[1].split("-")[1].split(";")[0])
    return conn, server_rtcp


def test_only_rtcp_from_the_declared_ports_keeps_a_udp_player_and_reports_go_there(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtsp_session_timeout": TIMEOUT}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    url = srv.rtsp_url("/live/rr")
    socks = [udp_socket() for _ in range(5)]
    player_rtp, player_rtcp, gone_rtp, gone_rtcp, neighbour = socks
    stop = threading.Event()
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/rr")
        player, player_server = start(srv, url, player_rtp, player_rtcp)
        gone, gone_server = start(srv, url, gone_rtp, gone_rtcp)

        def talk() -> None:
            while not stop.wait(TIMEOUT / 4):
                player_rtcp.sendto(RR, ("127.0.0.1", player_server))  # the player's own reports
                neighbour.sendto(RR, ("127.0.0.1", gone_server))  # someone else's, for the gone one

        talker = threading.Thread(target=talk, daemon=True)
        t0 = time.monotonic()
        talker.start()
        try:
            assert gone.wait_closed(TIMEOUT + 3.0), "RTCP from another port kept a gone player's session"
            reports = 0
            while time.monotonic() - t0 < 7.0 and not reports:  # reports every 5 s
                try:
                    data = player_rtcp.recv(2048)
                except socket.timeout:
                    continue
                reports += len(data) >= 8 and data[1] == SR
            assert reports, "no sender report on the declared RTCP port"
            assert player.closed_at is None, "the player's own RTCP did not keep it"
            player_rtp.settimeout(2.0)
            assert player_rtp.recv(2048)[0] >> 6 == 2  # still playing
        finally:
            stop.set()
            talker.join(5)
            for s in socks:
                s.close()
            player.close()
            gone.close()
