"""WHIP sessions per publisher address in a shard (`MAX_SESSIONS_PER_CLIENT`):
an IPv6 publisher counts as its /64, since a host may use any address of it
(a new one per connection); an IPv4-mapped one as its IPv4 address. The
offers are aiortc's own (the peer, never the thing under test)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile

import pytest

from hub.child import ChildArgs
from hub.config import Config
from hub.errors import ServiceUnavailable
from hub.shard.streams import StreamTable
from hub.shard.whip import MAX_SESSIONS_PER_CLIENT, WhipHost

from aiortc import RTCConfiguration, RTCPeerConnection


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def test_an_ipv6_publisher_is_its_64() -> None:
    async def main() -> None:
        config = dataclasses.replace(Config(), listen="127.0.0.1:0")
        args = ChildArgs("shard", 0, -1, "tw" + os.urandom(4).hex(), tempfile.gettempdir(), config)
        host = WhipHost(args, StreamTable(args, lambda reader, s: None))
        host.start()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        try:
            def offer(n: int, client: str) -> None:
                host.offer({"path": f"/live/w{n}", "sdp": sdp, "client": client, "host": "127.0.0.1"})

            for n in range(MAX_SESSIONS_PER_CLIENT):  # a new address of one /64 each time
                offer(n, f"[2001:db8:0:5::{n + 1:x}]:5000")
            with pytest.raises(ServiceUnavailable):
                offer(99, "[2001:db8:0:5:ffff:ffff:ffff:ffff]:5000")
            offer(100, "[2001:db8:0:6::1]:5000")  # another /64
            for n in range(MAX_SESSIONS_PER_CLIENT):
                offer(200 + n, "192.0.2.9:4000" if n % 2 else "[::ffff:192.0.2.9]:4000")
            with pytest.raises(ServiceUnavailable):
                offer(299, "192.0.2.9:4001")
            assert host.per_client == {"2001:db8:0:5::/64": MAX_SESSIONS_PER_CLIENT, "2001:db8:0:6::/64": 1,
                                       "192.0.2.9": MAX_SESSIONS_PER_CLIENT}
            for s in list(host.sessions.values()):
                s.close()
            assert not host.per_client
        finally:
            host.close()
            await pc.close()

    asyncio.run(main())
