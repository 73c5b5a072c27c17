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
from hub.media.webrtc.peer import (MAX_RESENT_PER_DATAGRAM, NACK_BURST, NACK_HOLDOFF, NACK_RATE,
                                   KeyframeRequested, PeerClosed, PeerConnected, PeerState, RecvTrack,
                                   RtpReceived, SendTrack, WebRtcPeer)
from hub.media.webrtc.rtcp_feedback import MAX_NACKED, parse_nack, pli
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
    return WebRtcPeer("s-" + ufrag, local_ufrag=ufrag, local_pwd="p" * 24, remote_ufrag=offer.ice_ufrag, remote_pwd=offer.ice_pwd,
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
    client.refresh(mux, "srv1", "p" * 24, 125.0)  # a check, and the answer to ours: consent
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


def test_a_check_from_a_spoofed_address_does_not_move_media_there() -> None:
    """The peer holds the credentials: a nominating check it sends from a
    victim's address (or one replayed by whoever saw it) moved media there,
    and more of them kept it flowing. Now that address gets one request of
    ours, which nobody there answers; media stays where it was."""
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 100.0)
    _connected(mux, client, peer, 100.0)
    spoofed = ("203.0.113.9", 53)
    for t in (101.0, 101.1, 110.0, 120.0, 130.0):  # valid credentials, USE-CANDIDATE
        replies = mux.receive(client.check("srv1", "p" * 24), spoofed, t)
        assert {a for _, a in replies} == {spoofed}
    assert peer.selected == client.addr
    assert peer.nominated == spoofed and peer.stats.probes == 1 + 4  # ours, one per PROBE_GAP at most
    assert peer.last_consent == 100.0 and mux.deadline(130.0) == 130.0
    assert {a for _, a in peer.send_rtcp(b"\x80\xc9\x00\x01" + bytes(4))} == {client.addr}
    mux.handle_timer(130.0)
    assert peer.state is PeerState.CLOSED and peer.close_reason == "consent expired"


def test_consent_is_the_answer_to_our_request_not_a_check() -> None:
    """Checks replayed from the selected address (a player gone, its old
    checks sent again) kept its media flowing: only the answers to our own
    requests, with a transaction ID nobody else saw, keep it now."""
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 100.0)
    _connected(mux, client, peer, 100.0)
    old = client.check("srv1", "p" * 24, nominate=False)
    replies = [mux.receive(old, client.addr, t) for t in (110.0, 120.0, 129.0)]
    assert peer.last_consent == 100.0
    assert all(len(r) == 2 and {a for _, a in r} == {client.addr} for r in replies)  # answered, and ours
    mux.handle_timer(130.0)
    assert peer.close_reason == "consent expired"


def test_a_peer_that_moves_to_a_new_address_keeps_consent_from_there() -> None:
    """A browser that changes network nominates a pair on its new address and
    refreshes consent from it; checks from the old address then do not count."""
    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 100.0)
    _connected(mux, client, peer, 100.0)
    new = ("192.0.2.44", 61000)
    client.refresh(mux, "srv1", "p" * 24, 110.0, addr=new, nominate=True)
    assert peer.selected == new and mux.by_addr[new] is peer
    for t in (135.0, 160.0):
        client.refresh(mux, "srv1", "p" * 24, t, addr=new)
    mux.handle_timer(189.0)
    assert peer.state is PeerState.CONNECTED and peer.last_consent == 160.0
    for t in (170.0, 185.0):
        client.refresh(mux, "srv1", "p" * 24, t)
    assert mux.deadline(185.0) == 190.0
    mux.handle_timer(190.0)
    assert peer.close_reason == "consent expired"


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
    peer = WebRtcPeer("s", local_ufrag="srv1", local_pwd="p" * 24, remote_ufrag=offer.ice_ufrag, remote_pwd=offer.ice_pwd,
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
    replies = mux.receive(client.check("srv1", "p" * 24), ("::1", 50000, 0, 0), 0.0)  # the answer, and ours
    assert [a for _, a in replies] == [("::1", 50000)] * 2 and mux.by_addr == {("::1", 50000): peer}


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


# -- NACK answers are bounded (a player holds the keys and may ask anything) ---

def _nack(ssrc: int, fcis: list[tuple[int, int]]) -> bytes:
    """One generic NACK part: (PID, BLP) per FCI."""
    body = struct.pack(">II", 1234, ssrc) + b"".join(struct.pack(">HH", pid & 0xFFFF, blp) for pid, blp in fcis)
    return struct.pack(">BBH", 0x81, 205, len(body) // 4) + body


def _buffered(now: float = 0.0) -> tuple[WebRtcMux, MemoryClient, WebRtcPeer, list[bytes], int]:
    """A connected peer whose video track has a full retransmission buffer
    (512 one-packet frames, sent to the peer once); its packets and SSRC."""
    mux = WebRtcMux()
    out = WebRtcStreamOut(DESC)
    client = MemoryClient()
    peer = _peer(client, now, out=out)
    _connected(mux, client, peer, now)
    sent: list[bytes] = []
    for i in range(512):
        pkts = out.packetize(0, avcc_join([bytes([0x41, 0x9A]) + bytes(20)]), i * 3600, now=now)
        peer.send_rtp(0, pkts)
        sent += pkts
    assert len(sent) == 512
    return mux, client, peer, sent, out.tracks[0].ssrc


#: RTCP bytes pylibsrtp protects (a 1,500-byte buffer less its largest SRTCP
#: trailer), so 17 NACKs of 16 FCIs where the audit's client sent 19.
SRTCP_PLAIN_MAX = 1500 - 148


def _seqs(datagrams: list[tuple[bytes, tuple[str, int]]]) -> list[int]:
    return [int.from_bytes(d[2:4], "big") for d, _ in datagrams]  # SRTP leaves the RTP header clear


def _seq(packet: bytes) -> int:
    return int.from_bytes(packet[2:4], "big")


def test_one_datagram_of_duplicate_nacks_resends_each_packet_once() -> None:
    """The audit's datagram: NACKs each 16 x (PID, BLP=0xFFFF) naming the same
    17 packets; 19 of them made 4,864 retransmissions, these 17 made 4,352;
    now 17."""
    mux, client, peer, sent, ssrc = _buffered()
    first = _seq(sent[100])
    datagram = _nack(ssrc, [(first, 0xFFFF)] * 16) * 17
    assert len(datagram) <= SRTCP_PLAIN_MAX
    assert client.tx is not None and client.rx is not None
    resent = mux.receive(client.tx.protect_rtcp(datagram), client.addr, 1.0)
    assert [client.rx.unprotect(d) for d, _ in resent] == sent[100:117]
    assert {a for _, a in resent} == {client.addr}
    assert peer.stats.nack_asked == 17 * 256 and peer.stats.nack_resent == 17


def test_one_datagram_is_held_to_the_per_datagram_cap() -> None:
    mux, client, peer, sent, ssrc = _buffered()
    first = _seq(sent[0])
    datagram = _nack(ssrc, [(first + 17 * i, 0xFFFF) for i in range(16)]) * 17  # 272 numbers, 17 times
    assert client.tx is not None
    resent = mux.receive(client.tx.protect_rtcp(datagram), client.addr, 1.0)
    assert len(resent) == MAX_RESENT_PER_DATAGRAM
    assert _seqs(resent) == [_seq(p) for p in sent[:MAX_RESENT_PER_DATAGRAM]]  # the first asked, once each
    assert peer.stats.nack_resent == MAX_RESENT_PER_DATAGRAM
    assert peer.stats.nack_limited == MAX_NACKED - MAX_RESENT_PER_DATAGRAM  # 256 distinct kept of 272


def test_a_repeated_nack_waits_for_the_holdoff() -> None:
    mux, client, peer, sent, ssrc = _buffered()
    first = _seq(sent[300])
    assert client.tx is not None
    ask = lambda now: mux.receive(client.tx.protect_rtcp(_nack(ssrc, [(first, 0b101)])), client.addr, now)  # noqa: E731
    assert len(ask(2.0)) == 3
    assert ask(2.0 + NACK_HOLDOFF / 2) == [] and peer.stats.nack_repeated == 3
    assert _seqs(ask(2.0 + NACK_HOLDOFF * 1.5)) == [_seq(p) for p in (sent[300], sent[301], sent[303])]


def test_a_flood_of_nack_datagrams_is_held_to_the_token_bucket() -> None:
    """200 datagrams in a second, each asking 64 other packets of the buffer:
    12,800 retransmissions unbounded, 5,120 with the hold-off alone; the
    bucket allows its burst plus its rate, and keeps answering at that rate."""
    mux, client, peer, sent, ssrc = _buffered()
    first = _seq(sent[0])
    assert client.tx is not None
    start, step, total = 2.0, 0.005, 0
    last: dict[int, float] = {}
    for k in range(200):
        now = start + k * step
        base = first + (k * 64) % 512
        resent = mux.receive(client.tx.protect_rtcp(_nack(ssrc, [(base + 16 * i, 0x7FFF) for i in range(4)])),
                             client.addr, now)
        assert len(resent) <= MAX_RESENT_PER_DATAGRAM
        for s in _seqs(resent):
            assert now - last.get(s, -1.0) >= NACK_HOLDOFF - 1e-9  # never twice within the hold-off
            last[s] = now
        total += len(resent)
    elapsed = 199 * step
    assert total <= NACK_BURST + NACK_RATE * elapsed
    assert total >= 0.9 * (NACK_BURST + NACK_RATE * elapsed)  # still served at the bucket's rate
    assert peer.stats.nack_limited > 0 and peer.stats.nack_resent == total
    assert len(peer._resent) <= NACK_BURST + NACK_RATE * NACK_HOLDOFF + 1


_NACKED = _buffered()
_NACK_CLOCK = [0.0]

_fcis = st.lists(st.tuples(st.integers(0, 700), st.integers(0, 0xFFFF)), min_size=1, max_size=16)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(0.0, 0.2), st.lists(_fcis, min_size=1, max_size=17)), min_size=1, max_size=12))
def test_any_nack_datagrams_stay_within_the_bounds(datagrams: list[tuple[float, list[list[tuple[int, int]]]]]) -> None:
    mux, client, peer, sent, ssrc = _NACKED
    first = _seq(sent[0])
    buffered = {_seq(p) for p in sent}
    assert client.tx is not None
    _NACK_CLOCK[0] += 10.0  # a full bucket and no hold-off left from the last example
    start = now = _NACK_CLOCK[0]
    total = 0
    last: dict[int, float] = {}
    for gap, parts in datagrams:
        now += gap
        plain = b"".join(_nack(ssrc, [(first + pid, blp) for pid, blp in fcis]) for fcis in parts)
        if len(plain) > SRTCP_PLAIN_MAX:
            continue
        seqs = _seqs(mux.receive(client.tx.protect_rtcp(plain), client.addr, now))
        assert len(seqs) <= MAX_RESENT_PER_DATAGRAM and len(set(seqs)) == len(seqs)
        assert set(seqs) <= buffered
        for s in seqs:
            assert s not in last or now - last[s] >= NACK_HOLDOFF - 1e-9
            last[s] = now
        total += len(seqs)
        assert total <= NACK_BURST + NACK_RATE * (now - start) + 1e-6
        assert len(peer._resent) <= NACK_BURST + NACK_RATE * NACK_HOLDOFF + 1
    _NACK_CLOCK[0] = now


def test_a_renegotiation_is_refused_with_an_alert() -> None:
    """A connected peer's new ClientHello (a renegotiation: a key exchange
    and a signature for one datagram) gets one alert record, never a
    handshake flight, however often it is sent; the session goes on."""
    from OpenSSL import SSL

    mux = WebRtcMux()
    client = MemoryClient()
    peer = _peer(client, 0.0)
    _connected(mux, client, peer, 0.0)
    client.ssl.renegotiate()
    try:
        client.ssl.do_handshake()
    except SSL.WantReadError:
        pass
    hello = client.dtls_out()
    assert hello and hello[0][0] == 22  # a handshake record: the ClientHello
    replies = [data for _ in range(5) for d in hello for data, _addr in mux.receive(d, client.addr, 0.0)]
    assert all(r[0] == 21 for r in replies), [(len(r), r[0]) for r in replies]  # alerts only
    assert sum(len(r) for r in replies) < 100
    assert peer.state is PeerState.CONNECTED
