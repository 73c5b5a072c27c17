"""Hostile peers against the sans-IO WebRTC engine: what one peer can make
the engine hold or do, each bound checked with real STUN, DTLS and SRTP
bytes on a fake clock."""

from __future__ import annotations

from hub.media.webrtc.dtls import DtlsServer
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.peer import CONNECT_TIMEOUT, PeerClosed, PeerState, WebRtcPeer

from memory_client import MemoryClient
from webrtc_glue import certificate

PWD = "p" * 24


def _peer(client: MemoryClient, now: float, ufrag: str = "srv1") -> WebRtcPeer:
    offer = client.offer()
    return WebRtcPeer("s-" + ufrag, local_ufrag=ufrag, local_pwd=PWD, remote_ufrag=offer.ice_ufrag,
                      dtls=DtlsServer(certificate(), offer.fingerprints), now=now)


def test_checks_without_a_finished_handshake_do_not_hold_the_peer() -> None:
    """A client that checks every 5 s (consent) but leaves DTLS after its
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
        assert mux.receive(client.check("srv1", PWD, nominate=False), client.addr, t)
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
        mux.receive(client.check("srv1", PWD, nominate=False), client.addr, t)
        mux.handle_timer(t)
    assert peer.state is PeerState.CONNECTED and mux.deadline(60.0) == 90.0
