"""The WebRTC UDP glue's sends on loopback: a peer's packets of one turn in
GSO runs (the kernel cuts them back into the same datagrams) or one by one."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hub.media.webrtc.mux import WebRtcMux
from hub.webrtc_udp import WebRtcSocket, bind_udp

# A keyframe's packets as the packetiser makes them: SPS, PPS, FU-A (equal
# sizes but the last), then a small audio packet and a larger one again.
PACKETS = [b"S" * 27, b"P" * 8] + [bytes([i]) * 1216 for i in range(5)] + [b"L" * 700, b"a" * 176, b"B" * 1216]


async def _roundtrip(gso: bool) -> tuple[list[bytes], WebRtcSocket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    port = WebRtcSocket(bind_udp("127.0.0.1", 0), WebRtcMux(), lambda events: None)
    port.gso = gso
    try:
        assert port.send_packets(PACKETS, ("127.0.0.1", rx.getsockname()[1]))
        got = [rx.recv(4096) for _ in PACKETS]
        return got, port
    finally:
        port.close()
        rx.close()


@pytest.mark.parametrize("gso", [True, False])
def test_packets_arrive_whole_and_in_order(gso: bool) -> None:
    got, port = asyncio.run(_roundtrip(gso))
    assert got == PACKETS
    assert (port.sent, port.dropped) == (len(PACKETS), 0)


def test_datagrams_from_nobody_known_are_counted_and_dropped() -> None:
    async def run() -> WebRtcMux:
        mux = WebRtcMux()
        events: list[object] = []
        port = WebRtcSocket(bind_udp("127.0.0.1", 0), mux, events.extend)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for d in (b"\x00\x01garbage", b"\x80\x60rtp-from-a-stranger", b"\x16\xfe\xfddtls"):
                tx.sendto(d, ("127.0.0.1", port.port))
            for _ in range(100):
                if port.received == 3:
                    break
                await asyncio.sleep(0.01)
            assert port.received == 3 and not events
        finally:
            tx.close()
            port.close()
        return mux

    stats = asyncio.run(run()).stats
    assert (stats.datagrams, stats.bad_stun, stats.unknown_address) == (3, 1, 2)
