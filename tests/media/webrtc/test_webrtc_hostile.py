"""Hostile peers against the sans-IO WebRTC engine: what one peer can make
the engine hold or do, each bound checked with real STUN, DTLS and SRTP
bytes on a fake clock."""

from __future__ import annotations

import struct

from hub.media.access_unit import avcc_join
from hub.media.rtcp import ReceiverReport
from hub.media.rtp import RtpPacket
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.media.webrtc.dtls import DtlsServer
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.peer import (CLIENT_NACK_BURST, CLIENT_NACK_RATE, CONNECT_TIMEOUT, NackBudget, PeerClosed,
                                   PeerState, RecvTrack, RtpReceived, SendTrack, WebRtcPeer)
from hub.media.webrtc.srtp import MAX_REMOTE_SSRCS
from hub.media.webrtc.stream_out import WebRtcStreamOut

from memory_client import MemoryClient
from webrtc_glue import certificate

PWD = "p" * 24
DESC = StreamDesc(1, "/live/x", "ring", 1, "", [
    TrackDesc(0, "video", "H264", 96, 90000, sps=bytes.fromhex("6742c01e8c8d40"), pps=bytes.fromhex("68ce3c80"))])


def _peer(client: MemoryClient, now: float, ufrag: str = "srv1") -> WebRtcPeer:
    offer = client.offer()
    return WebRtcPeer("s-" + ufrag, local_ufrag=ufrag, local_pwd=PWD, remote_ufrag=offer.ice_ufrag, remote_pwd=offer.ice_pwd,
                      dtls=DtlsServer(certificate(), offer.fingerprints), now=now)


def test_checks_without_a_finished_handshake_do_not_hold_the_peer() -> None:
    """A client that keeps consent every 5 s but leaves DTLS after its
    ClientHello held the half-done handshake (~70 KiB of OpenSSL state, its
    pending slot, a WHEP player's place) for as long as it kept checking."""
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 100.0)
    mux.add(peer)
    assert mux.receive(client.check("srv1", PWD), client.addr, 100.0)
    (hello,) = client.dtls_step([])
    assert mux.receive(hello, client.addr, 100.0) and peer.state is PeerState.CHECKED
    t = 100.0
    while t < 100.0 + CONNECT_TIMEOUT - 5.0:
        t += 5.0
        assert client.refresh(mux, "srv1", PWD, t)
        mux.handle_timer(t)
    mux.handle_timer(100.0 + CONNECT_TIMEOUT - 0.1)
    assert peer.state is PeerState.CHECKED and peer.last_consent == t
    assert (mux.deadline(t) or 0.0) <= 100.0 + CONNECT_TIMEOUT  # not consent's expiry, 30 s after the last check
    mux.handle_timer(100.0 + CONNECT_TIMEOUT)
    assert peer.state is PeerState.CLOSED and peer.close_reason == "not connected in time"
    assert mux.pop_events() == [PeerClosed(peer, "not connected in time")]
    assert mux.by_ufrag == {} and mux.by_addr == {}


def test_a_connected_peer_lives_on_consent_past_the_connect_deadline() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 0.0)
    mux.add(peer)
    client.connect(mux, "srv1", PWD, 1.0)
    assert peer.state is PeerState.CONNECTED
    for t in (20.0, 40.0, 60.0):
        client.refresh(mux, "srv1", PWD, t)
        mux.handle_timer(t)
    assert peer.state is PeerState.CONNECTED and mux.deadline(60.0) == 90.0


def _connected(mux: WebRtcMux, client: MemoryClient, peer: WebRtcPeer, now: float) -> None:
    mux.add(peer)
    client.connect(mux, peer.creds.local_ufrag, PWD, now)
    assert peer.state is PeerState.CONNECTED
    mux.pop_events()


def test_a_publisher_cannot_make_libsrtp_keep_a_stream_per_ssrc() -> None:
    """Each new SSRC that authenticates is a libsrtp stream (~400 bytes, and a
    link of the list searched for every packet): a publisher naming a new
    one in each packet grew the peer without end (30,000 made each later
    packet of the process ~50x dearer)."""
    mux = WebRtcMux()
    client = MemoryClient()
    track = RecvTrack(0, "0", "video", "H264", 102, 90000)
    peer = WebRtcPeer("s-srv1", local_ufrag="srv1", local_pwd=PWD, remote_ufrag=client.offer().ice_ufrag,
                      remote_pwd=client.offer().ice_pwd,
                      dtls=DtlsServer(certificate(), client.offer().fingerprints), now=0.0, recv_tracks=[track])
    _connected(mux, client, peer, 0.0)
    assert client.tx is not None
    for i in range(2000):
        packet = bytes(RtpPacket(102, 1, 0, 0x10000 + i, False, b"\x41"))
        mux.receive(client.tx.protect(packet), client.addr, 1.0)
        mux.pop_events()
    assert peer.stats.srtp_in == MAX_REMOTE_SSRCS and peer.stats.dropped == 2000 - MAX_REMOTE_SSRCS
    # The SSRCs it already sent with still play.
    mux.receive(client.tx.protect(bytes(RtpPacket(102, 2, 0, 0x10000, False, b"\x41"))), client.addr, 2.0)
    assert [type(e) for e in mux.pop_events()] == [RtpReceived]


def test_a_player_cannot_make_libsrtp_keep_a_stream_per_rtcp_sender() -> None:
    """The same through SRTCP: every receiver report from another sender SSRC."""
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 0.0)
    _connected(mux, client, peer, 0.0)
    assert client.tx is not None
    for i in range(2000):
        report = bytes(ReceiverReport(0x10000 + i, []))
        mux.receive(client.tx.protect_rtcp(report), client.addr, 1.0)
    assert peer.stats.srtcp_in == MAX_REMOTE_SSRCS and peer.stats.dropped == 2000 - MAX_REMOTE_SSRCS
    mux.receive(client.tx.protect_rtcp(bytes(ReceiverReport(0x10000, []))), client.addr, 2.0)
    assert peer.stats.srtcp_in == MAX_REMOTE_SSRCS + 1


def test_one_clients_peers_share_one_nack_budget() -> None:
    """Each peer has its own NACK bucket (512 packets, 512/s): a client that
    opened 16 sessions NACKing the whole buffer on each got 16 buckets
    (8,192 retransmissions at once). The front gives the peers of one
    client address one shared budget besides."""
    out = WebRtcStreamOut(DESC)
    mux = WebRtcMux()
    shared = NackBudget(CLIENT_NACK_BURST, CLIENT_NACK_RATE, 0.0)
    clients = [MemoryClient(("127.0.0.1", 40000 + i)) for i in range(16)]
    peers = []
    for i, c in enumerate(clients):
        offer = c.offer()
        peer = WebRtcPeer(f"s{i}", local_ufrag=f"srv{i}", local_pwd=PWD, remote_ufrag=offer.ice_ufrag,
                          remote_pwd=offer.ice_pwd, dtls=DtlsServer(certificate(), offer.fingerprints), now=0.0,
                          send_tracks=[SendTrack(0, "0", "video", "H264", 96, 90000, out.tracks[0].ssrc)],
                          source=out, client_nacks=shared)
        _connected(mux, c, peer, 0.0)
        peers.append(peer)
    first = RtpPacket.parse(out.packetize(0, avcc_join([bytes([0x41]) + bytes(20)]), 0, now=0.0)[0]).sequence_number
    for i in range(1, 512):
        out.packetize(0, avcc_join([bytes([0x41]) + bytes(20)]), i * 3600, now=0.0)
    ssrc = out.tracks[0].ssrc
    total = 0
    for k in range(8):  # each datagram: 64 NACKs of 17 packets, 1,088 numbers (256 taken)
        base = (first + 64 * k) & 0xFFFF
        nack = struct.pack(">BBHII", 0x81, 205, 2 + 16, 1, ssrc) + b"".join(
            struct.pack(">HH", (base + 17 * j) & 0xFFFF, 0xFFFF) for j in range(16))
        for c in clients:
            assert c.tx is not None
            total += len(mux.receive(c.tx.protect_rtcp(nack), c.addr, 1.0))
    assert sum(p.stats.nack_resent for p in peers) == total
    assert total <= CLIENT_NACK_BURST + 1  # one burst for all 16 (8,192 with a bucket each)
