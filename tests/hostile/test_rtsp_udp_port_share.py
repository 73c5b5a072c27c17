"""One client cannot take a front's whole slice of RTP/UDP ports.

Every track a player sets up over UDP holds a port pair from the front's
slice of `rtp_ports`, for as long as its connection lives. Before, one
client opening connections and setting up over UDP took the whole slice
(here 50 pairs) and then every other client's UDP SETUP failed, answered
500 with a traceback in the log. Now a client address holds at most
a share of the front's pairs (an eighth of its slice, at least 32); past
it (and with the slice used up) SETUP is answered 461, on which players set
up over TCP, and another client still plays over UDP."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from hub.api.play.rtp import RtpPorts
from hub.udp_ports import PortPairPool
from hub.udp_ports import pairs_per_client as udp_pairs_per_client
from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media

from .rtsp_peers import RawRtsp, session_of

pytestmark = pytest.mark.e2e

PAIRS = 50  # the front's slice: half of 200 ports (one shard, one front)
SHARE = udp_pairs_per_client(PAIRS)  # 32: the floor


def setup_udp(conn: RawRtsp, url: str, port: int) -> int:
    assert conn.ask("DESCRIBE", url, 1).status == 200
    return conn.ask("SETUP", f"{url}/trackID=0", 2,
                    ("Transport", f"RTP/AVP;unicast;client_port={port}-{port + 1}")).status


def test_one_client_holds_a_share_of_the_udp_ports_and_another_still_plays(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rtp_ports": "42000-42199"}))
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    url = srv.rtsp_url("/live/ports")
    conns: list[RawRtsp] = []
    victim_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim_udp.bind(("127.0.0.2", 0))
    victim_udp.settimeout(3.0)
    with Pusher(url, make_media(tmp_path, "h264")):
        wait_live(srv, "/live/ports")
        try:
            statuses = []
            for _ in range(PAIRS):  # the whole slice, from one address
                conn = RawRtsp(srv.port)
                conns.append(conn)
                statuses.append(setup_udp(conn, url, 9000))
            assert statuses.count(200) == SHARE < PAIRS, statuses
            assert set(statuses[SHARE:]) == {461}, statuses
            # Another client still gets a pair, and RTP on it.
            victim = RawRtsp(srv.port, source="127.0.0.2")
            conns.append(victim)
            port = victim_udp.getsockname()[1]
            assert victim.ask("DESCRIBE", url, 1).status == 200
            setup = victim.ask("SETUP", f"{url}/trackID=0", 2,
                               ("Transport", f"RTP/AVP;unicast;client_port={port}-{port + 1}"))
            assert setup.status == 200, setup
            assert victim.ask("PLAY", url, 3, ("Session", session_of(setup))).status == 200
            assert victim_udp.recv(2048)[0] >> 6 == 2
            # Pairs given back are the client's to take again.
            for c in conns[:4]:
                c.close()
            again = RawRtsp(srv.port)
            conns.append(again)
            for _ in range(20):
                if setup_udp(again, url, 9000) == 200:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("a pair given back was never free again")
            assert "Traceback" not in srv.log()
        finally:
            victim_udp.close()
            for c in conns:
                c.close()


def test_the_share_grows_with_the_slice() -> None:
    """An NVR pulling many streams over UDP from one address: with the
    default range on one shard and one front (1,000 pairs a front) it holds
    125 pairs (62 streams of video and audio), not 32; the 126th is 461, and
    another address still gets one."""
    from hub.errors import UnsupportedTransport

    ports = RtpPorts(PortPairPool(43000, 44999, slice_index=1, slices=2), PortPairPool(45000, 45099), "235.0.0.1", 1)
    assert len(ports.udp.ports) == 500 and ports.udp.per_client == 62  # this test's own range
    assert udp_pairs_per_client(1000) == 125 and udp_pairs_per_client(100) == 32
    held = []
    try:
        for _ in range(62):
            held += ports.udp_pair("127.0.0.1")
        with pytest.raises(UnsupportedTransport):
            ports.udp_pair("127.0.0.1")
        held += ports.udp_pair("127.0.0.2")
    finally:
        for s in held:
            s.close()
