"""The WebRTC UDP glue's sends on loopback: a peer's packets of one turn in
GSO runs (the kernel cuts them back into the same datagrams) or one by one."""

from __future__ import annotations

import asyncio
import dataclasses
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


class _EchoMux(WebRtcMux):
    """Answers every datagram to where it came from, and notes who that was."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    def receive(self, data: bytes, addr, now: float):  # type: ignore[no-untyped-def, override]
        self.seen.append(addr)
        return [(b"re:" + data, addr)]


@pytest.mark.parametrize("client", ["127.0.0.1", "::1"])
def test_one_dual_stack_port_serves_ipv4_and_ipv6_peers(client: str) -> None:
    """`listen` without a host: one IPv6 socket that IPv4 peers reach too.
    The engine sees an IPv4 peer as its own address (not ::ffff:...), and
    what it sends that peer gets there; its answer's candidates are of the
    family the request came in on."""
    from hub.config import Config
    from hub.webrtc_udp import bind_for_listen, candidates_for

    async def run() -> None:
        mux = _EchoMux()
        port = WebRtcSocket(bind_for_listen(("0.0.0.0", "::"), 0), mux, lambda events: None)
        family = socket.AF_INET6 if ":" in client else socket.AF_INET
        tx = socket.socket(family, socket.SOCK_DGRAM)
        tx.bind((client, 0))
        tx.setblocking(False)
        try:
            assert port.dual and port.family == socket.AF_INET6
            tx.sendto(b"ping", (client, port.port))
            loop = asyncio.get_running_loop()
            reply = await asyncio.wait_for(loop.sock_recv(tx, 2048), 2)
            assert reply == b"re:ping"
            assert [a[:2] for a in mux.seen] == [(client, tx.getsockname()[1])]  # type: ignore[index]
            assert port.send_packets([b"one", b"two"], mux.seen[0])  # type: ignore[arg-type]
            assert [await asyncio.wait_for(loop.sock_recv(tx, 2048), 2) for _ in range(2)] == [b"one", b"two"]
            config = Config()
            for host, want in (("127.0.0.1", "127.0.0.1"), ("::ffff:10.0.0.5", "10.0.0.5"), ("::1", "::1")):
                assert [c.host for c in candidates_for(config, port, host)] == [want]
            config = dataclasses.replace(config, webrtc=dataclasses.replace(
                config.webrtc, public_addresses=("203.0.113.7", "2001:db8::7")))
            assert [c.host for c in candidates_for(config, port, "::1")] == ["203.0.113.7", "2001:db8::7"]
        finally:
            tx.close()
            port.close()

    asyncio.run(run())
