"""`listen` without a host (`:1554`, the default) serves IPv6 and IPv4, as
ipchub's Go listener does; it served IPv4 alone (0.0.0.0), so an IPv6
camera or player got "connection refused" from a default install.

Two sockets per front, IPv4's and a v6-only IPv6 one: an IPv4 peer keeps
its own address (the API's `addr`, per-address limits), not `::ffff:...`."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable

import pytest

from hub.supervisor.main import check_address_free
from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e


def test_no_host_serves_ipv6_and_ipv4(hub_factory: Callable[..., HubServer], media: Callable[[str], Path]) -> None:
    hub = hub_factory("--shards", "1", "--fronts", "2", listen_host="")
    v6 = f"[::1]:{hub.port}"
    with Pusher(f"rtsp://{v6}/dual/cam", media("h264")):  # an IPv6 camera
        wait_live(hub, "/dual/cam")
        for url, opts in ((f"http://{v6}/streams/dual/cam.flv", {}),
                          (f"rtsp://{v6}/dual/cam", {"rtsp_transport": "udp"}),
                          (f"rtsp://127.0.0.1:{hub.port}/dual/cam", {"rtsp_transport": "tcp"})):
            r = play(url, frames=25, timeout=15, options=opts)
            assert r.video_codec == "h264" and (r.width, r.height) == (640, 360), url
            assert r.video_frames >= 25 and r.advancing() and r.decode_errors == 0, (url, r.log[:5])
        (stream,) = hub.get_json("/api/v1/streams")["streams"]
        assert stream["addr"].startswith("[::1]:"), stream["addr"]
    with Pusher(hub.rtsp_url("/dual/v4"), media("h264")):  # an IPv4 one keeps its address
        wait_live(hub, "/dual/v4")
        addrs = {s["path"]: s["addr"] for s in hub.get_json("/api/v1/streams")["streams"]}
        assert addrs["/dual/v4"].startswith("127.0.0.1:"), addrs


def test_a_taken_ipv6_port_is_refused_at_start() -> None:
    """Another program on IPv6's side of the port: the start says so
    (`:PORT is already in use`), as for IPv4's."""
    taken = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    taken.bind(("::", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        check_address_free(("0.0.0.0",), port)  # IPv4's side is free
        with pytest.raises(SystemExit, match=f"^ipchub: :{port} is already in use$"):
            check_address_free(("0.0.0.0", "::"), port)
    finally:
        taken.close()
    check_address_free(("0.0.0.0", "::"), port)


def test_whep_over_ipv6_and_ipv4_on_the_default_listen(hub_factory: Callable[..., HubServer],
                                                       media: Callable[[str], Path]) -> None:
    """With both families served, a player whose HTTP request came over
    IPv6 must get an IPv6 candidate on a socket that answers it: the WebRTC
    port is one dual-stack socket (an IPv4-only one answered 503 "no
    address of the UDP port's family" to IPv6 players, and a browser that
    had reached the port over IPv6 never fell back to IPv4)."""
    import asyncio

    from tests.e2e.webrtc_peers import whep, whip

    hub = hub_factory("--shards", "1", "--fronts", "1", listen_host="")
    with Pusher(hub.rtsp_url("/dual/rtc"), media("h264")):
        wait_live(hub, "/dual/rtc")

        async def run() -> None:
            for base in (f"http://[::1]:{hub.port}", hub.base):
                p = await whep(base, "/dual/rtc", audio=False)
                try:
                    assert p.reply.status == 201, (base, p.reply.text)
                    host = "::1" if "[" in base else "127.0.0.1"
                    assert f" {host} " in p.reply.text, p.reply.text  # the candidate's address
                    frames = await p.video_frames(20)
                    assert {(f.width, f.height) for f in frames} == {(640, 360)}, base
                finally:
                    await p.close()
            # A WHIP publisher over IPv6: the shard's port is dual-stack too.
            pub = await whip(f"http://[::1]:{hub.port}", "/dual/whip")
            try:
                assert pub.reply.status == 201, pub.reply.text
                await asyncio.to_thread(wait_live, hub, "/dual/whip", 15.0)
                r = await asyncio.to_thread(play, f"{hub.base}/streams/dual/whip.flv", 20, 20)
                assert r.video_codec == "h264" and r.video_frames >= 20 and r.advancing(), r.log[:5]
            finally:
                await pub.close()

        asyncio.run(asyncio.wait_for(run(), 90))
