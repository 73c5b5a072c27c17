"""A UDP player's RTCP port is read within a budget, not for as long as a
flood lasts.

Every datagram sent to a UDP player's RTCP port was read (8 a wake-up)
however many came: a player flooding its own port, or anyone who found it,
held 94% of the front's core for as long as the flood lasted
(`bench/udp_flood.py`, 185,000 datagrams a second), and every other
player of the front shares that loop. Now a track's RTCP port is read FEEDBACK_BURST datagrams at once,
then FEEDBACK_RATE a second; past that it is left unread for a while and
the kernel keeps or drops the rest. Receiver reports every few seconds
stay far below it: the player still plays and its reports still keep it.
And once a report came from the player's declared RTCP port, the port is
connected to it: a stranger's datagrams never reach the front."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pytest

from hub.api.play.rtp import FEEDBACK_BURST
from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media

from .test_rtsp_udp_rtcp_source import RR, start, udp_socket

pytestmark = pytest.mark.e2e

TIMEOUT = 4.0
FLOOD = 20 * FEEDBACK_BURST  # sent at ~300 a second: a front reads that many at once, if it reads them


def queued_and_dropped(port: int) -> tuple[int, int]:
    """The IPv4 UDP socket bound to `port` (a player's pair is bound on any
    address): bytes queued unread and datagrams the kernel dropped
    (/proc/net/udp)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1].endswith(f":{port:04X}"):
            return int(f[4].split(":")[1], 16), int(f[-1])
    raise AssertionError(f"no UDP socket on port {port}")


def test_a_flood_of_a_players_rtcp_port_is_left_unread(hub_factory: Callable[..., HubServer],
                                                        tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtsp_session_timeout": TIMEOUT}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    url = srv.rtsp_url("/live/rtcpflood")
    rtp, rtcp = udp_socket(), udp_socket()
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/rtcpflood")
        player, server_rtcp = start(srv, url, rtp, rtcp)
        try:
            assert queued_and_dropped(server_rtcp) == (0, 0)
            for i in range(FLOOD):  # the player's own declared port, as a session's reports come
                rtcp.sendto(RR, ("127.0.0.1", server_rtcp))
                if i % 10 == 9:
                    time.sleep(0.03)
            time.sleep(0.3)
            queued, dropped = queued_and_dropped(server_rtcp)
            assert queued > 0 or dropped > 0, "every datagram of the flood was read"
            # The player plays on, and its reports keep it past the session timeout.
            deadline = time.monotonic() + TIMEOUT + 2.0
            while time.monotonic() < deadline:
                rtcp.sendto(RR, ("127.0.0.1", server_rtcp))
                time.sleep(0.5)
            assert player.closed_at is None, "the player's reports no longer kept it"
            rtp.settimeout(2.0)
            while True:  # the socket's queue holds what came while we slept: the newest counts
                data = rtp.recv(2048)
                if data[0] >> 6 == 2:
                    break
            assert "Traceback" not in srv.log()
        finally:
            rtp.close()
            rtcp.close()
            player.close()


def test_once_a_player_reported_a_strangers_flood_never_reaches_its_rtcp_port(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    """A stranger flooding a player's RTCP port spent the track's budget, so
    the player's own reports were left unread and its session could time
    out. Once the player's RTCP came from a port it declared, the socket is
    connected to that source: the kernel drops the stranger's datagrams
    before the front reads them, and the player's reports keep it."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtsp_session_timeout": TIMEOUT}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    url = srv.rtsp_url("/live/rtcpstranger")
    rtp, rtcp, stranger = udp_socket(), udp_socket(), udp_socket()
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/rtcpstranger")
        player, server_rtcp = start(srv, url, rtp, rtcp)
        try:
            rtcp.sendto(RR, ("127.0.0.1", server_rtcp))  # the player's first report
            deadline = time.monotonic() + TIMEOUT + 2.0
            sent = 0
            while time.monotonic() < deadline:
                for _ in range(100):  # ~500 a second from a port the player never declared
                    stranger.sendto(RR, ("127.0.0.1", server_rtcp))
                sent += 100
                if sent % 500 == 0:
                    rtcp.sendto(RR, ("127.0.0.1", server_rtcp))
                time.sleep(0.2)
            assert player.closed_at is None, "the player's reports no longer kept it"
            assert queued_and_dropped(server_rtcp) == (0, 0), "the stranger's datagrams reached the socket"
            assert "Traceback" not in srv.log()
        finally:
            for s in (rtp, rtcp, stranger):
                s.close()
            player.close()
