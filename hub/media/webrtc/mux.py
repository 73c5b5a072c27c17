"""All WebRTC peers of a process on one UDP port (sans-IO).

A datagram from an address we know goes to that address's peer (a Binding
success too: the answer to a request of the peer's). From an unknown
address only a STUN Binding request is looked at: the first half of its
USERNAME is our ICE ufrag, which names the peer; once the peer accepts the
check (right password), the address is bound to it. Everything else is
dropped and counted in :class:`MuxStats`; nothing a datagram holds makes
:meth:`WebRtcMux.receive` raise.

Addresses are bound for as long as the peer lives, at most
:data:`hub.media.webrtc.peer.MAX_ADDRESSES` per peer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import ProtocolError, ServiceUnavailable

from .peer import Addr, Datagram, PeerEvent, PeerState, WebRtcPeer
from .stun import BINDING_REQUEST, BINDING_SUCCESS, StunMessage

__all__ = ["MuxStats", "WebRtcMux", "MAX_MUX_EVENTS"]

#: Events kept for the glue between two drains.
MAX_MUX_EVENTS = 4096


@dataclass(slots=True)
class MuxStats:
    datagrams: int = 0
    unknown_address: int = 0   # not STUN, from an address no peer checked
    bad_stun: int = 0          # unparsable STUN, or not a request, or no USERNAME
    unknown_ufrag: int = 0
    rejected_check: int = 0    # ufrag known, check refused (integrity, remote ufrag)
    closed_peer: int = 0
    events_dropped: int = 0


def _key(addr: tuple[object, ...]) -> Addr:
    return (str(addr[0]), int(addr[1]))  # type: ignore[call-overload]


class WebRtcMux:
    """Peers by ICE ufrag and by checked address; datagrams in, datagrams out."""

    def __init__(self, max_peers: int = 10000) -> None:
        self.max_peers = max_peers
        self.stats = MuxStats()
        self.by_ufrag: dict[str, WebRtcPeer] = {}
        self.by_addr: dict[Addr, WebRtcPeer] = {}
        self.events: list[PeerEvent] = []
        #: The peer the last :meth:`receive` went to (None: dropped), so the
        #: glue can move its timer up when that peer's deadline came nearer.
        self.last_peer: WebRtcPeer | None = None
        self._bound: dict[WebRtcPeer, list[Addr]] = {}

    def add(self, peer: WebRtcPeer) -> None:
        """Register a peer whose answer went out (its ufrag must be unique)."""
        if len(self.by_ufrag) >= self.max_peers:
            raise ServiceUnavailable("WebRTC: too many sessions")  # refused before anything changed
        if peer.creds.local_ufrag in self.by_ufrag:
            raise ValueError("ICE ufrag already in use")
        self.by_ufrag[peer.creds.local_ufrag] = peer

    def remove(self, peer: WebRtcPeer) -> list[Datagram]:
        """Close (if not yet) and forget a peer; returns its close_notify."""
        if self.last_peer is peer:
            self.last_peer = None
        out = peer.close("removed")
        self._collect(peer)
        if self.by_ufrag.get(peer.creds.local_ufrag) is peer:
            del self.by_ufrag[peer.creds.local_ufrag]
        for a in self._bound.pop(peer, []):
            if self.by_addr.get(a) is peer:
                del self.by_addr[a]
        return out

    def receive(self, data: bytes, addr: tuple[object, ...], now: float) -> list[Datagram]:
        """One datagram from ``addr``; returns what to send (each to its address).

        STUN is routed by the ufrag in its USERNAME (so a check can move a
        peer to a new address), everything else by the source address.
        """
        self.stats.datagrams += 1
        self.last_peer = None
        key = _key(addr)
        if not data or data[0] >= 4:
            peer = self.by_addr.get(key)
            if peer is None:
                self.stats.unknown_address += 1
                return []
            if peer.state is PeerState.CLOSED:
                self.stats.closed_peer += 1
                return []
            out = peer.receive(data, key, now)
            self.last_peer = peer
            self._collect(peer)
            return out
        try:
            msg = StunMessage.parse(data)
            username = msg.username
        except ProtocolError:
            self.stats.bad_stun += 1
            return []
        if msg.msg_type == BINDING_SUCCESS:
            # The answer to a request of ours: from a checked address only.
            peer = self.by_addr.get(key)
            if peer is None or peer.state is PeerState.CLOSED:
                self.stats.unknown_address += 1
                return []
            self.last_peer = peer
            return peer.handle_stun(msg, key, now)
        if msg.msg_type != BINDING_REQUEST or username is None:
            self.stats.bad_stun += 1
            return []
        peer = self.by_ufrag.get(username.partition(":")[0])
        if peer is None:
            self.stats.unknown_ufrag += 1
            return []
        if peer.state is PeerState.CLOSED:
            self.stats.closed_peer += 1
            return []
        out = peer.handle_stun(msg, key, now)
        self.last_peer = peer
        if not out:
            self.stats.rejected_check += 1
        self._bind(peer)
        self._collect(peer)
        return out

    def handle_timer(self, now: float) -> list[Datagram]:
        """Run every peer's timers; closed peers are forgotten here."""
        out: list[Datagram] = []
        for peer in list(self.by_ufrag.values()):
            out += peer.handle_timer(now)
            self._collect(peer)
            if peer.state is PeerState.CLOSED:
                self.remove(peer)
        return out

    def deadline(self, now: float) -> float | None:
        """The earliest time :meth:`handle_timer` has work (None without peers)."""
        return min((p.deadline(now) for p in self.by_ufrag.values()), default=None)

    def pop_events(self) -> list[PeerEvent]:
        events, self.events = self.events, []
        return events

    def _bind(self, peer: WebRtcPeer) -> None:
        """Make the address map follow the peer's checked addresses."""
        bound = self._bound.setdefault(peer, [])
        if bound == peer.addresses:
            return
        for a in bound:
            if a not in peer.addresses and self.by_addr.get(a) is peer:
                del self.by_addr[a]
        for a in peer.addresses:
            self.by_addr[a] = peer  # a checked address belongs to the peer that checked it last
        self._bound[peer] = list(peer.addresses)

    def _collect(self, peer: WebRtcPeer) -> None:
        if not peer.events:
            return
        room = MAX_MUX_EVENTS - len(self.events)
        if room < len(peer.events):
            self.stats.events_dropped += len(peer.events) - max(room, 0)
        if room > 0:
            self.events += peer.events[:room]
        peer.events.clear()
