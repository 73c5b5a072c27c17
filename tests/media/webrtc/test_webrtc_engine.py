"""The sans-IO engine driven without sockets: ICE-lite checks, DTLS with a
pyOpenSSL client, SRTP both ways, NACK, PLI, consent expiry on a fake clock,
one packetisation for many peers, and the mux's never-raise property."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.access_unit import avcc_join
from hub.media.rtcp import SenderReport, parse_compound
from hub.media.rtp import RtpPacket
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.media.webrtc.dtls import DtlsServer, split_records
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.peer import (KeyframeRequested, PeerClosed, PeerConnected, PeerState, RecvTrack,
                                   RtpReceived, SendTrack, WebRtcPeer)
from hub.media.webrtc.rtcp_feedback import parse_nack, pli
from hub.media.webrtc.stream_out import RetransmitBuffer, WebRtcStreamOut

from memory_client import MemoryClient
from webrtc_glue import certificate

SPS = bytes.fromhex("6742c01e8c8d40")
PPS = bytes.fromhex("68ce3c80")
DESC = StreamDesc(1, "/live/x", "ring", 1, "", [
    TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS),
    TrackDesc(1, "audio", "MPEG4-GENERIC", 97, 44100),
    TrackDesc(2, "audio", "PCMA", 8, 8000),
])


def _peer(client: MemoryClient, now: float, *, pt: int = 96, out: WebRtcStreamOut | None = None,
          recv: list[RecvTrack] | None = None, ufrag: str = "srv1") -> WebRtcPeer:
    send = None
    if out is not None:
        send = [SendTrack(0, "0", "video", "H264", pt, 90000, out.tracks[0].ssrc),
                SendTrack(2, "1", "audio", "PCMA", 8, 8000, out.tracks[2].ssrc)]
    offer = client.offer()
    return WebRtcPeer("s-" + ufrag, local_ufrag=ufrag, local_pwd="p" * 24, remote_ufrag=offer.ice_ufrag,
                      dtls=DtlsServer(certificate(), offer.fingerprints), now=now, send_tracks=send,
                      recv_tracks=recv, source=out)


def _connected(mux: WebRtcMux, client: MemoryClient, peer: WebRtcPeer, now: float) -> None:
    mux.add(peer)
    client.connect(mux, peer.creds.local_ufrag, "p" * 24, now)
    assert peer.state is PeerState.CONNECTED
    assert [type(e) for e in mux.pop_events()] == [PeerConnected]


def test_one_packetization_two_peers_decrypt_the_same_rtp() -> None:
    mux = WebRtcMux()
    out = WebRtcStreamOut(DESC)
    assert sorted(out.tracks) == [0, 2]  # AAC has no WebRTC payload
    clients = [MemoryClient(("127.0.0.1", 50000 + i)) for i in range(2)]
    peers = [_peer(c, 0.0, out=out, ufrag=f"srv{i}") for i, c in enumerate(clients)]
    for c, p in zip(clients, peers):
        _connected(mux, c, p, 0.0)
    idr = avcc_join([bytes([0x65]) + bytes(3000)])  # keyframe without SPS/PPS: they get prepended
    pkts = out.packetize(0, idr, 0, keyframe=True, now=1.0)
    assert out.units == 1
    assert [p[12] & 0x1F for p in pkts[:2]] == [7, 8] and len(pkts) == 5  # SPS, PPS, 3 FU-A
    assert out.packetize(1, b"aac", 0) == [] and out.units == 1
    wire = [p.send_rtp(0, pkts) for p in peers]
    assert wire[0][0][0] != wire[1][0][0]  # each peer has its own keys
    for c, p, datagrams in zip(clients, peers, wire):
        assert {a for _, a in datagrams} == {c.addr}
        assert c.rx is not None
        assert [c.rx.unprotect(d) for d, _ in datagrams] == pkts
        assert p.stats.rtp_out == 5 and p.stats.rtp_rewritten == 0


def test_payload_type_rewrite_for_a_peer_that_negotiated_another() -> None:
    mux = WebRtcMux()
    out = WebRtcStreamOut(DESC)
    client = MemoryClient()
    peer = _peer(client, 0.0, pt=106, out=out)
    _connected(mux, client, peer, 0.0)
    pkts = out.packetize(0, avcc_join([bytes([0x41, 0x9A]) + bytes(10)]), 3000, now=1.0)
    assert client.rx is not None
    plain = client.rx.unprotect(peer.send_rtp(0, pkts)[0][0])
    assert plain[1] == 0x80 | 106 and plain[2:] == pkts[0][2:] and pkts[0][1] == 0x80 | 96
    assert peer.stats.rtp_rewritten == 1


def test_nack_answered_from_the_shared_buffer_and_pli_noted() -> None:
    mux = WebRtcMux()
    out = WebRtcStreamOut(DESC)
    client = MemoryClient()
    peer = _peer(client, 0.0, out=out)
    _connected(mux, client, peer, 0.0)
    pkts = out.packetize(0, avcc_join([bytes([0x65]) + bytes(5000)]), 0, keyframe=True, now=1.0)
    first = RtpPacket.parse(pkts[0]).sequence_number
    ssrc = out.tracks[0].ssrc
    nack = struct.pack(">BBHIIHH", 0x81, 205, 3, 1234, ssrc, (first + 1) & 0xFFFF, 0b101)  # +1, +2, +4
    assert client.tx is not None and client.rx is not None
    resent = mux.receive(client.tx.protect_rtcp(nack), client.addr, 2.0)
    assert [client.rx.unprotect(d) for d, _ in resent] == [pkts[1], pkts[2], pkts[4]]
    assert (peer.stats.nack_asked, peer.stats.nack_resent) == (3, 3)
    assert mux.receive(client.tx.protect_rtcp(pli(1234, ssrc)), client.addr, 2.0) == []
    assert mux.pop_events() == [KeyframeRequested(peer, 0, "pli")] and peer.stats.pli == 1
    # Sender reports go out protected per peer.
    (sr,) = [r for r in out.sender_reports(2.0) if parse_compound(r)[0].ssrc == ssrc]  # type: ignore[union-attr]
    (d, _), = peer.send_rtcp(sr)
    report = parse_compound(client.rx.unprotect_rtcp(d))[0]
    assert isinstance(report, SenderReport) and report.packet_count == len(pkts)


def test_whip_receive_decrypts_negotiated_payload_types_only() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    track = RecvTrack(0, "0", "video", "H264", 102, 90000)
    peer = _peer(client, 0.0, recv=[track])
    _connected(mux, client, peer, 0.0)
    assert client.tx is not None and client.rx is not None
    good = bytes(RtpPacket(102, 7, 9000, 0xABCDEF01, True, bytes([0x65, 0x88, 0x80])))
    other = bytes(RtpPacket(103, 8, 9000, 0xABCDEF01, True, b"\x01"))
    assert mux.receive(client.tx.protect(good), client.addr, 1.0) == []
    assert mux.receive(client.tx.protect(other), client.addr, 1.0) == []
    assert mux.pop_events() == [RtpReceived(peer, track, good)]
    assert peer.stats.srtp_in == 1 and peer.stats.dropped == 1
    (d, addr), = peer.request_keyframe(0)
    assert addr == client.addr
    assert client.rx.unprotect_rtcp(d) == pli(peer.rtcp_ssrc, 0xABCDEF01)


def test_consent_expires_on_a_fake_clock() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 100.0)
    _connected(mux, client, peer, 100.0)
    mux.receive(client.check("srv1", "p" * 24, nominate=False), client.addr, 125.0)  # consent refresh
    assert mux.handle_timer(154.9) == [] and peer.state is PeerState.CONNECTED
    assert mux.deadline(154.9) == 155.0
    mux.handle_timer(155.0)
    assert peer.state is PeerState.CLOSED and peer.close_reason == "consent expired"
    assert mux.pop_events() == [PeerClosed(peer, "consent expired")]
    assert mux.by_ufrag == {} and mux.by_addr == {} and mux.deadline(155.0) is None
    # Its datagrams are now from an unknown address.
    assert client.tx is not None
    assert mux.receive(client.tx.protect(bytes(RtpPacket(96, 1, 1, 1))), client.addr, 156.0) == []
    assert mux.stats.unknown_address == 1


def test_peer_that_never_checks_is_reaped() -> None:
    mux = WebRtcMux()
    peer = _peer(MemoryClient(), 0.0)
    mux.add(peer)
    mux.handle_timer(29.0)
    assert peer.state is PeerState.NEW
    mux.handle_timer(30.0)
    assert peer.close_reason == "no ICE check" and not mux.by_ufrag


def test_checks_with_wrong_credentials_change_nothing() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 0.0)
    mux.add(peer)
    assert mux.receive(client.check("srv1", "wrong password!!!!!!!!"), client.addr, 1.0) == []
    assert mux.receive(client.check("nope", "p" * 24), client.addr, 1.0) == []
    other = MemoryClient()
    assert mux.receive(other.check("srv1", "p" * 24), other.addr, 1.0) == []  # their ufrag is not the offer's
    assert (mux.stats.rejected_check, mux.stats.unknown_ufrag) == (2, 1)
    assert peer.state is PeerState.NEW and peer.addresses == [] and mux.by_addr == {}
    assert peer.last_consent == 0.0


def test_lost_server_flight_is_retransmitted_on_the_timer() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 0.0)
    mux.add(peer)
    mux.receive(client.check("srv1", "p" * 24), client.addr, 0.0)
    (hello,) = client.dtls_step([])
    first = mux.receive(hello, client.addr, 0.0)
    assert first and peer.state is PeerState.CHECKED  # ServerHello..ServerHelloDone, then lost
    wait = peer.dtls.timeout()
    assert wait is not None and 0 < wait <= 1.0 and mux.deadline(0.0) == pytest.approx(wait, abs=0.05)
    import time

    time.sleep(wait + 0.05)  # OpenSSL's own clock: the one wait this engine cannot fake
    again = mux.handle_timer(0.0 + wait)
    assert [d for d, _ in again] and all(a == client.addr for _, a in again)
    second = client.dtls_step([d for d, _ in again])  # the retransmission moves the client on
    finished = [d for f in second for d, _ in mux.receive(f, client.addr, 1.0)]
    assert peer.state is PeerState.CONNECTED
    assert client.dtls_step(finished) == [] and client.tx is not None


def test_dtls_from_an_unchecked_address_is_dropped() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 0.0)
    mux.add(peer)
    hello = client.dtls_step([])
    assert mux.receive(hello[0], client.addr, 0.0) == []
    assert mux.stats.unknown_address == 1 and peer.stats.dtls_in == 0


def test_wrong_certificate_fails_the_session() -> None:
    mux = WebRtcMux()
    client = MemoryClient()
    offer = client.offer()
    peer = WebRtcPeer("s", local_ufrag="srv1", local_pwd="p" * 24, remote_ufrag=offer.ice_ufrag,
                      dtls=DtlsServer(certificate(), [("sha-256", "AB:" * 31 + "AB")]), now=0.0)
    mux.add(peer)
    with pytest.raises(AssertionError):
        client.connect(mux, "srv1", "p" * 24, 0.0)
    assert peer.state is PeerState.CLOSED and "fingerprint" in peer.close_reason
    assert peer.srtp is None


def test_dtls_server_needs_a_usable_fingerprint() -> None:
    with pytest.raises(ProtocolError):
        DtlsServer(certificate(), [("sha-1", "AB:CD")])


def test_split_records_keeps_records_whole() -> None:
    rec = lambda n: bytes([22, 0xFE, 0xFD]) + bytes(8) + n.to_bytes(2, "big") + bytes(n)  # noqa: E731
    data = rec(700) + rec(700) + rec(100)
    assert [len(d) for d in split_records(data, 1200)] == [713, 713 + 113]
    assert split_records(rec(2000), 1200) == [rec(2000)]


def test_retransmit_buffer_wraps_and_checks_sequence() -> None:
    buf = RetransmitBuffer(4)
    pkts = [bytes(RtpPacket(96, s & 0xFFFF, 0, 1)) for s in range(65533, 65539)]
    buf.add(pkts)
    assert buf.lookup(65533) is None and buf.lookup(65534) is None  # overwritten
    assert [buf.lookup(s) for s in (65535, 0, 1, 2)] == pkts[2:]
    assert buf.lookup(6) is None  # same slot as 2, other number


def test_nack_parsing() -> None:
    nack = parse_nack(struct.pack(">IIHH", 1, 2, 65535, 0b11))
    assert nack.lost == (65535, 0, 1)
    with pytest.raises(ProtocolError):
        parse_nack(b"\x00" * 10)


# -- the mux never raises ----------------------------------------------------

def _connected_fixture() -> tuple[WebRtcMux, MemoryClient, WebRtcPeer]:
    mux = WebRtcMux()
    client = MemoryClient()
    out = WebRtcStreamOut(DESC)
    peer = _peer(client, 0.0, out=out, recv=[RecvTrack(0, "0", "video", "H264", 102, 90000)])
    _connected(mux, client, peer, 0.0)
    return mux, client, peer


_MUX = _connected_fixture()

_datagrams = st.one_of(
    st.binary(max_size=1600),
    st.tuples(st.sampled_from([0, 1, 20, 22, 23, 63, 128, 129, 191, 200]), st.binary(max_size=300))
    .map(lambda t: bytes([t[0]]) + t[1]),
    st.binary(min_size=0, max_size=200).map(lambda b: bytes.fromhex("0001") + len(b).to_bytes(2, "big")
                                             + bytes.fromhex("2112a442") + bytes(12) + b),
    st.binary(max_size=64).map(lambda b: bytes([0x80, 200]) + b),  # SRTCP-looking
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_datagrams, st.sampled_from([("127.0.0.1", 50000), ("127.0.0.9", 1)])), max_size=8))
def test_any_datagram_is_handled_or_dropped_and_counted(batch: list[tuple[bytes, tuple[str, int]]]) -> None:
    mux, _client, peer = _MUX
    for data, addr in batch:
        before = mux.stats.datagrams
        out = mux.receive(data, addr, 1.0)
        assert mux.stats.datagrams == before + 1
        assert all(isinstance(d, bytes) and isinstance(a, tuple) for d, a in out)
    mux.pop_events()
    assert peer.state is PeerState.CONNECTED  # nothing spoofable ends a session


def test_garbage_is_counted() -> None:
    mux, client, peer = _connected_fixture()
    dropped = peer.stats.dropped
    mux.receive(b"\x80\x60" + bytes(30), client.addr, 1.0)       # SRTP that does not authenticate
    mux.receive(b"\xff" * 10, client.addr, 1.0)                  # outside RFC 7983's ranges
    mux.receive(b"\x80\xc8" + bytes(30), client.addr, 1.0)       # SRTCP that does not authenticate
    assert peer.stats.dropped == dropped + 3
    mux.receive(b"\x00\x01\x00\x00" + bytes(16), client.addr, 1.0)  # no cookie
    mux.receive(b"\x17" + bytes(20), ("127.0.0.9", 1), 1.0)
    assert mux.stats.bad_stun == 1 and mux.stats.unknown_address == 1
    mux.receive(bytes([23, 0xFE, 0xFD]) + bytes(30), client.addr, 1.0)  # bogus DTLS record
    assert peer.state is PeerState.CONNECTED


def test_ipv6_addresses_with_flow_info_and_scope() -> None:
    mux = WebRtcMux()
    client = MemoryClient(("::1", 50000))
    peer = _peer(client, 0.0)
    mux.add(peer)
    (reply, addr), = mux.receive(client.check("srv1", "p" * 24), ("::1", 50000, 0, 0), 0.0)
    assert addr == ("::1", 50000) and mux.by_addr == {("::1", 50000): peer}


def test_nack_for_an_old_packet_in_the_buffer_is_resent() -> None:
    """400 packets back is past libsrtp's default window (128) but inside our buffer."""
    mux = WebRtcMux()
    out = WebRtcStreamOut(DESC)
    client = MemoryClient()
    peer = _peer(client, 0.0, out=out)
    _connected(mux, client, peer, 0.0)
    sent = []
    for i in range(600):
        pkts = out.packetize(0, avcc_join([bytes([0x41, 0x9A]) + bytes(20)]), i * 3600, now=1.0)
        peer.send_rtp(0, pkts)
        sent += pkts
    ssrc = out.tracks[0].ssrc
    old = RtpPacket.parse(sent[200]).sequence_number
    gone = RtpPacket.parse(sent[10]).sequence_number  # overwritten in the 512-packet buffer
    assert client.tx is not None and client.rx is not None
    nack = struct.pack(">BBHIIHHHH", 0x81, 205, 4, 1, ssrc, old, 0, gone, 0)
    resent = mux.receive(client.tx.protect_rtcp(nack), client.addr, 2.0)
    assert [RtpPacket.parse(client.rx.unprotect(d)).sequence_number for d, _ in resent] == [old]
    assert peer.stats.protect_failed == 0 and (peer.stats.nack_asked, peer.stats.nack_resent) == (2, 1)
