"""RTSP multicast players on a front (`hub.api.play.rtp`): a stream's group
sends only while one of its players plays, ends with its last player, and
its port block is its own until then.

Before: a SETUP alone started the stream onto the group (no PLAY needed),
it went on after every player had left (for as long as the view lived: a
stranger could put every stream onto the LAN, TTL 127, for good), and the
blocks came from a wrapping counter that was never given back: past a
front's slice (125 two-track streams by default) the next stream got a
live stream's ports, mixing their RTP. Sends are recorded here instead of
going onto the network."""

from __future__ import annotations

import pytest

from hub.api.play import rtp as rtp_mod
from hub.api.play.rtp import MulticastOut, RtpPorts
from hub.errors import UnsupportedTransport
from hub.udp_ports import PortPairPool

from .fakes import OneShard, Stream, make_front, run
from .test_rtsp_connection import URL, connect


def test_each_stream_gets_a_block_of_its_own_until_it_closes() -> None:
    ports = RtpPorts(PortPairPool(31400, 31409), PortPairPool(16666, 16673), "235.0.0.1", 1)
    a = ports.multicast_out(2)
    b = ports.multicast_out(2)
    try:
        assert (a.ports, b.ports) == ([16666, 16668], [16670, 16672])
        with pytest.raises(UnsupportedTransport):
            ports.multicast_out(2)  # the slice is used up: 461, not a live stream's ports
        with pytest.raises(UnsupportedTransport):
            ports.multicast_out(1)
        a.close()
        c = ports.multicast_out(1)
        d = ports.multicast_out(1)
        assert sorted(c.ports + d.ports) == [16666, 16668]
        for x in (c, d):
            x.close()
        # A block never runs past the slice's end (into another front's ports).
        e = ports.multicast_out(1)
        with pytest.raises(UnsupportedTransport):
            ports.multicast_out(2)
        e.close()
    finally:
        for x in (a, b):
            x.close()


def test_the_group_sends_only_while_a_player_plays_and_ends_with_the_last(
        stream: Stream, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int]] = []  # (port, bytes)

    def record(self: MulticastOut, batch: rtp_mod.Batch) -> None:
        sent.extend((self.ports[t], len(p)) for t, _k, p in batch)

    monkeypatch.setattr(MulticastOut, "send", record)
    monkeypatch.setattr(MulticastOut, "send_rtcp", lambda self, reports: None)

    async def main() -> None:
        front = make_front(OneShard(stream))
        ports: RtpPorts = front.rtp_ports
        first, second = await connect(front), await connect(front)
        for c in (first, second):
            for i in range(2):
                answer = await c.ask("SETUP", f"{URL}/trackID={i}", "Transport: RTP/AVP;multicast")
                assert answer.status == 200, answer
        fanout = front.views.by_path["/live/x"].fanout("rtp", rtp_mod.RtpFanout)
        group = fanout.multicast
        assert group is not None
        stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        assert sent == [], "set up but not playing: nothing goes onto the network"

        assert (await first.ask("PLAY", f"{URL}/")).status == 200
        stream.video(False, 3600)
        front.views.on_wake({stream.stream_id: 2})
        assert sent and {port for port, _n in sent} <= set(group.ports)
        sent.clear()

        assert (await first.ask("PAUSE", f"{URL}/")).status == 200
        stream.video(False, 7200)
        front.views.on_wake({stream.stream_id: 3})
        assert sent == [], "paused, and the other player never played"

        assert (await first.ask("TEARDOWN", f"{URL}/")).status == 200
        assert fanout.multicast is group, "the second player still holds the group"
        assert (await second.ask("TEARDOWN", f"{URL}/")).status == 200
        assert fanout.multicast is None and getattr(group, "closed", False)
        assert not ports._mc_used, "its block was given back"

    run(main())
