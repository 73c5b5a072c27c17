"""An RTSP player over UDP whose connection is IPv6: its port pair was
bound IPv4 whatever the player's family, so every datagram to it failed
(silently: `sendto` errors are dropped) and the player got nothing."""

from __future__ import annotations

import socket

from hub.api.rtsp.connection import RtspConnection
from hub.media.rtp import RtpPacket

from .fakes import FakeTransport, OneShard, Stream, make_front, run, until
from .test_rtsp_connection import URL, Client


def test_an_ipv6_udp_player_gets_its_packets(stream: Stream) -> None:
    rtp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rtp.bind(("::1", 0))
    rtcp.bind(("::1", 0))
    rtp.setblocking(False)
    got: list[bytes] = []

    def receive() -> bool:
        try:
            while True:
                got.append(rtp.recv(65536))
        except BlockingIOError:
            pass
        return bool(got)

    async def main() -> None:
        front = make_front(OneShard(stream))
        t = FakeTransport(peer=("::1", 40000))
        conn = RtspConnection(front, "rtsp")
        t.connect(conn)
        c = Client(conn, t)
        ports = f"{rtp.getsockname()[1]}-{rtcp.getsockname()[1]}"
        answer = await c.ask("SETUP", f"{URL}/trackID=0", f"Transport: RTP/AVP;unicast;client_port={ports}")
        assert answer.status == 200, answer
        assert (await c.ask("PLAY", f"{URL}/")).status == 200
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        await until(receive)
        assert RtpPacket.parse(got[0]).payload_type == 96
        assert (await c.ask("TEARDOWN", f"{URL}/")).status == 200

    try:
        run(main())
    finally:
        rtp.close()
        rtcp.close()
