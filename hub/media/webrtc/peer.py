"""One WebRTC peer on the shared UDP port: ICE-lite, DTLS server, SRTP.

A :class:`WebRtcPeer` is made when an offer is answered. We are ICE-lite
(RFC 8445 2.5): we answer the peer's Binding requests when their USERNAME
and MESSAGE-INTEGRITY match the credentials of the offer/answer, remember
each address that passed a check (at most :data:`MAX_ADDRESSES`) and take
the one the peer nominated (USE-CANDIDATE). DTLS and SRTP are only accepted
from a checked address.

A check proves nothing about its source address: the peer holds the
credentials and can send one from any address it likes (a victim's), and
anyone who saw one can replay it. So media goes to the nominated address
(:attr:`selected`) only once it answered a Binding request of ours
(RFC 7675 consent: a random transaction ID only the real holder of the
address sees), and only those answers refresh consent. We send one when a
check comes from the nominated or selected address, at most one per
address every :data:`PROBE_GAP` seconds (the peer's own checks, every few
seconds, pace ours). With no answer for ``consent_timeout`` seconds (30 by
default) the peer is closed. The same bound covers a peer that never
checks; one that checks but does not finish DTLS is closed
:data:`CONNECT_TIMEOUT` after the answer, however often it checks (checks
alone held a half-done handshake, ~70 KiB, for ever).

Send side: :meth:`send_rtp` takes packets made once per stream (see
:mod:`hub.media.webrtc.stream_out`) and only protects them, after a 1-byte
payload-type rewrite on a copy when this peer negotiated another number.
NACKs are answered from the stream's retransmission buffer; PLI and FIR are
counted and reported as events (nothing is asked upstream).

NACK answers are bounded, since a player holds the keys and may ask for
anything: the sequence numbers of one datagram (every NACK of its compound
packet) are collected without duplicates (at most ``fb.MAX_NACKED``), at
most :data:`MAX_RESENT_PER_DATAGRAM` packets are resent for it, a number
resent to this peer less than :data:`NACK_HOLDOFF` ago is not resent again,
and a token bucket (:data:`NACK_BURST` packets, refilled at
:data:`NACK_RATE` per second) bounds the peer's retransmissions over time;
another (:class:`NackBudget`, :data:`CLIENT_NACK_BURST` and
:data:`CLIENT_NACK_RATE`), shared by the glue among all the peers of one
client address, bounds that client's however many sessions it opens.
Without them one 1.4 KB datagram of 19 NACKs, each naming the same 17
packets 16 times, made ~4,900 retransmissions (~5.8 MB, ~50 ms of the
loop).

Receive side (WHIP): decrypted RTP of a negotiated payload type becomes an
:class:`RtpReceived` event, ready for a depacketiser.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol, Union

from hub.errors import ProtocolError
from hub.media.rtcp import ReceiverReport, ReportBlock, RtcpRaw, SenderReport, parse_compound
from hub.rate import TokenBucket

from . import rtcp_feedback as fb
from .dtls import DtlsServer, DtlsState
from .srtp import SrtpContext
from .stun import (ATTR_ICE_CONTROLLED, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME, BINDING_INDICATION,
                   BINDING_REQUEST, BINDING_SUCCESS, StunMessage, binding_success)

__all__ = ["Addr", "Datagram", "PeerState", "SendTrack", "RecvTrack", "PacketSource", "PeerStats",
           "PeerConnected", "PeerClosed", "RtpReceived", "SenderReportReceived",
           "KeyframeRequested", "PeerEvent", "WebRtcPeer", "CONSENT_TIMEOUT", "CONNECT_TIMEOUT", "MAX_ADDRESSES", "PROBE_GAP",
           "MAX_RESENT_PER_DATAGRAM", "NACK_BURST", "NACK_RATE", "NACK_HOLDOFF", "NackBudget",
           "CLIENT_NACK_BURST", "CLIENT_NACK_RATE"]

Addr = tuple[str, int]
Datagram = tuple[bytes, Addr]

#: RFC 7675: consent expires 30 s after the last successful check.
CONSENT_TIMEOUT = 30.0
#: Seconds from the answer to SRTP keys (ICE and DTLS done): a handshake
#: takes well under a second; consent checks do not extend this.
CONNECT_TIMEOUT = 30.0
#: Checked addresses remembered per peer (host, reflexive, a NAT rebinding...).
MAX_ADDRESSES = 8
#: Seconds between two of our Binding requests to one address, and our
#: requests awaiting an answer per peer (the oldest forgotten): a spoofed
#: check makes us send at most one ~90-byte request where it claims to be.
PROBE_GAP = 0.5
MAX_PROBES = 2 * MAX_ADDRESSES
#: PRIORITY of our requests: a host candidate's (answer.candidate_line).
_PROBE_PRIORITY = (126 << 24) | (65535 << 8) | 255
#: Events kept between two drains by the glue.
MAX_EVENTS = 256
#: Packets resent for one datagram (one compound RTCP packet), whatever its
#: NACKs ask: a player's NACK names the few packets it lost since the last
#: one (Chrome sends one per frame with losses).
MAX_RESENT_PER_DATAGRAM = 64
#: Retransmissions per peer over time: a token bucket of NACK_BURST packets,
#: refilled at NACK_RATE packets per second. 512 is one retransmission buffer
#: (`stream_out.RETRANSMIT_PACKETS`, ~1 s of a 4 Mbit/s stream, whose rate is
#: ~420 packets/s): a player can have a second of loss resent at once and
#: about as much again every second, ~1.2x that stream's packet rate (more
#: for slower streams, which cannot lose more than they send anyway).
NACK_BURST = 512
NACK_RATE = 512.0
#: Retransmissions per client address, all its peers together (the glue
#: shares one NackBudget among them): four peers' buckets, so a few players
#: behind one NAT keep theirs, and a client opening 64 sessions does not get
#: 64 (32,768 packets a second).
CLIENT_NACK_BURST = 4 * NACK_BURST
CLIENT_NACK_RATE = 4 * NACK_RATE
#: Seconds during which a sequence number resent to a peer is not resent
#: again (a NACK repeated before the retransmission could have arrived).
NACK_HOLDOFF = 0.1
#: Resent numbers remembered per peer for NACK_HOLDOFF: the bucket already
#: bounds them to NACK_BURST + NACK_RATE * NACK_HOLDOFF (~563); this is the
#: hard stop should the clock go backwards.
MAX_RESENT_REMEMBERED = 1024


class PeerState(enum.Enum):
    NEW = "new"                # answered, no valid check yet
    CHECKED = "checked"        # ICE check passed, DTLS in progress
    CONNECTED = "connected"    # SRTP keys ready
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SendTrack:
    """A stream track this peer receives: our SSRC, its payload type."""

    track: int
    mid: str
    kind: str
    codec: str
    payload_type: int
    clock_rate: int
    ssrc: int


@dataclass(frozen=True, slots=True)
class RecvTrack:
    """A track this peer publishes to us (WHIP), as negotiated."""

    track: int
    mid: str
    kind: str
    codec: str
    payload_type: int
    clock_rate: int
    channels: int = 0
    fmtp: str = ""


class PacketSource(Protocol):
    """Where NACKed packets are looked up (the stream's retransmission buffer)."""

    def lookup(self, track: int, seq: int) -> bytes | None: ...


@dataclass(slots=True)
class PeerStats:
    stun_ok: int = 0
    stun_rejected: int = 0     # wrong username or integrity, or not a request
    probes: int = 0            # our Binding requests sent (consent, an address's reachability)
    probes_answered: int = 0
    dtls_in: int = 0
    srtp_in: int = 0
    srtcp_in: int = 0
    dropped: int = 0           # from an unchecked address, before keys, undecryptable
    rtp_out: int = 0
    protect_failed: int = 0    # libsrtp refused (a NACKed index older than its window)
    rtp_rewritten: int = 0
    nack_asked: int = 0        # sequence numbers in NACKs, duplicates included
    nack_resent: int = 0
    nack_repeated: int = 0     # not resent: already resent less than NACK_HOLDOFF ago
    nack_limited: int = 0      # not resent: per-datagram cap or token bucket
    pli: int = 0
    fir: int = 0


@dataclass(frozen=True, slots=True)
class PeerConnected:
    peer: WebRtcPeer


@dataclass(frozen=True, slots=True)
class PeerClosed:
    peer: WebRtcPeer
    reason: str


@dataclass(frozen=True, slots=True)
class RtpReceived:
    peer: WebRtcPeer
    track: RecvTrack
    packet: bytes  # decrypted RTP packet, header included


@dataclass(frozen=True, slots=True)
class SenderReportReceived:
    peer: WebRtcPeer
    report: SenderReport


@dataclass(frozen=True, slots=True)
class KeyframeRequested:
    peer: WebRtcPeer
    track: int
    kind: str  # "pli" or "fir"


PeerEvent = Union[PeerConnected, PeerClosed, RtpReceived, SenderReportReceived, KeyframeRequested]


#: Retransmissions as a token bucket (packets): a peer's own, and one shared
#: by all the peers of one client address (the glue's).
NackBudget = TokenBucket


@dataclass(slots=True)
class _Credentials:
    local_ufrag: str
    local_pwd: str
    remote_ufrag: str
    remote_pwd: str
    username: str = field(init=False)
    key: bytes = field(init=False)
    probe_username: bytes = field(init=False)  # of our requests
    remote_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.username = f"{self.local_ufrag}:{self.remote_ufrag}"
        self.key = self.local_pwd.encode()
        self.probe_username = f"{self.remote_ufrag}:{self.local_ufrag}".encode()
        self.remote_key = self.remote_pwd.encode()


class WebRtcPeer:
    """ICE-lite + DTLS + SRTP state of one peer; sans-IO (datagrams and ``now`` in)."""

    def __init__(self, session_id: str, *, local_ufrag: str, local_pwd: str, remote_ufrag: str,
                 remote_pwd: str, dtls: DtlsServer, now: float, send_tracks: list[SendTrack] | None = None,
                 recv_tracks: list[RecvTrack] | None = None, source: PacketSource | None = None,
                 consent_timeout: float = CONSENT_TIMEOUT, client_nacks: NackBudget | None = None) -> None:
        self.session_id = session_id
        self.creds = _Credentials(local_ufrag, local_pwd, remote_ufrag, remote_pwd)
        self.dtls = dtls
        self.state = PeerState.NEW
        self.stats = PeerStats()
        self.events: list[PeerEvent] = []
        self.events_dropped = 0
        self.addresses: list[Addr] = []
        #: The address the peer nominated, and where media goes: the
        #: nominated one once it answered a request of ours.
        self.nominated: Addr | None = None
        self.selected: Addr | None = None
        #: Our requests awaiting an answer: transaction ID -> (address, sent at).
        self._probes: OrderedDict[bytes, tuple[Addr, float]] = OrderedDict()
        self._tie_breaker = random.getrandbits(64).to_bytes(8, "big")
        self.consent_timeout = consent_timeout
        self.last_consent = now
        self.connect_by = now + CONNECT_TIMEOUT
        self.close_reason = ""
        self.srtp: SrtpContext | None = None
        self.source = source
        self.send_tracks = {t.track: t for t in send_tracks or ()}
        self._by_ssrc = {t.ssrc: t for t in self.send_tracks.values()}
        self.recv_tracks = {t.payload_type: t for t in recv_tracks or ()}
        #: SSRC the peer sends each received track with (learned from RTP).
        self.recv_ssrc: dict[int, int] = {}
        self.rtcp_ssrc = random.getrandbits(32)
        #: NACK token buckets: this peer's, and its client's (shared).
        self._nacks = NackBudget(NACK_BURST, NACK_RATE, now)
        self.client_nacks = client_nacks
        #: (track << 16 | seq) -> when it was resent, oldest first (an
        #: OrderedDict: taking from the front stays O(1)).
        self._resent: OrderedDict[int, float] = OrderedDict()

    # -- input ------------------------------------------------------------

    def receive(self, data: bytes, addr: Addr, now: float) -> list[Datagram]:
        """One datagram from ``addr`` (RFC 7983 demux on the first byte)."""
        if self.state is PeerState.CLOSED or not data:
            self.stats.dropped += 1
            return []
        b0 = data[0]
        if b0 < 4:
            try:
                msg = StunMessage.parse(data)
            except ProtocolError:
                self.stats.stun_rejected += 1
                return []
            return self.handle_stun(msg, addr, now)
        if addr not in self.addresses:
            self.stats.dropped += 1
            return []
        if 20 <= b0 <= 63:
            return self._handle_dtls(data, addr)
        if 128 <= b0 <= 191:
            return self._handle_srtp(data, now)
        self.stats.dropped += 1
        return []

    def handle_stun(self, msg: StunMessage, addr: Addr, now: float) -> list[Datagram]:
        """Answer a Binding request with our credentials, and send one of
        ours to the nominated (or selected) address it came from; the answer
        to one of ours (a Binding success) selects its address and
        refreshes consent."""
        if msg.msg_type == BINDING_INDICATION:
            return []  # keep-alive, needs no answer and proves nothing
        if msg.msg_type == BINDING_SUCCESS:
            self._probe_answered(msg, addr, now)
            return []
        creds = self.creds
        try:
            username = msg.username
        except ProtocolError:
            username = None
        if (msg.msg_type != BINDING_REQUEST or username != creds.username
                or not msg.check_integrity(creds.key)):
            self.stats.stun_rejected += 1
            return []
        self.stats.stun_ok += 1
        if addr not in self.addresses:
            if len(self.addresses) >= MAX_ADDRESSES:
                dropped = self.addresses.pop(0)
                if dropped == self.selected:
                    self.selected = None
                if dropped == self.nominated:
                    self.nominated = None
            self.addresses.append(addr)
        if msg.has(ATTR_USE_CANDIDATE) or self.nominated is None:
            self.nominated = addr
        if self.state is PeerState.NEW:
            self.state = PeerState.CHECKED
        out = [(binding_success(msg, addr[0], addr[1], creds.key), addr)]
        if addr == self.nominated or addr == self.selected:
            out += self._probe(addr, now)
        return out

    def _probe(self, addr: Addr, now: float) -> list[Datagram]:
        """A Binding request of ours to ``addr``, unless one went there less
        than PROBE_GAP ago."""
        probes = self._probes
        if any(a == addr and now - at < PROBE_GAP for a, at in probes.values()):
            return []
        if len(probes) >= MAX_PROBES:
            probes.popitem(last=False)
        txid = random.getrandbits(96).to_bytes(12, "big")
        probes[txid] = (addr, now)
        self.stats.probes += 1
        creds = self.creds
        request = StunMessage(BINDING_REQUEST, txid, [
            (ATTR_USERNAME, creds.probe_username), (ATTR_PRIORITY, _PROBE_PRIORITY.to_bytes(4, "big")),
            (ATTR_ICE_CONTROLLED, self._tie_breaker)])
        return [(request.encode(creds.remote_key), addr)]

    def _probe_answered(self, msg: StunMessage, addr: Addr, now: float) -> None:
        """An answer to a request of ours, from where it went: that address
        is the peer's. Media goes there if the peer nominated it; consent
        is fresh while media goes there (RFC 7675)."""
        sent = self._probes.get(msg.transaction_id)
        if sent is None or sent[0] != addr or not msg.check_integrity(self.creds.remote_key):
            self.stats.stun_rejected += 1
            return
        del self._probes[msg.transaction_id]
        self.stats.probes_answered += 1
        if addr == self.nominated:
            self.selected = addr
        if addr == self.selected:
            self.last_consent = now

    def _handle_dtls(self, data: bytes, addr: Addr) -> list[Datagram]:
        self.stats.dtls_in += 1
        out = self.dtls.receive(data)
        if self.dtls.state is DtlsState.CONNECTED and self.srtp is None and self.dtls.keys:
            self.srtp = SrtpContext(self.dtls.keys)
            self.state = PeerState.CONNECTED
            self._event(PeerConnected(self))
        elif self.dtls.state is DtlsState.FAILED:
            self.close(f"DTLS failed: {self.dtls.failure}")
        elif self.dtls.state is DtlsState.CLOSED and self.state is not PeerState.CLOSED:
            self.close("DTLS close_notify")
        return [(d, addr) for d in out]

    def _handle_srtp(self, data: bytes, now: float) -> list[Datagram]:
        srtp = self.srtp
        if srtp is None:
            self.stats.dropped += 1
            return []
        if len(data) >= 2 and 192 <= data[1] <= 223:
            try:
                plain = srtp.unprotect_rtcp(data)
                parts = parse_compound(plain)
            except ProtocolError:
                self.stats.dropped += 1
                return []
            self.stats.srtcp_in += 1
            nacked: dict[int, dict[int, None]] = {}  # media SSRC -> numbers, in order asked
            for part in parts:
                try:
                    self._handle_rtcp(part, nacked)
                except ProtocolError:
                    self.stats.dropped += 1
            return self._answer_nacks(nacked, now) if nacked else []
        try:
            plain = srtp.unprotect(data)
        except ProtocolError:
            self.stats.dropped += 1
            return []
        track = self.recv_tracks.get(plain[1] & 0x7F) if len(plain) >= 12 else None
        if track is None:
            self.stats.dropped += 1
            return []
        self.stats.srtp_in += 1
        self.recv_ssrc[track.track] = int.from_bytes(plain[8:12], "big")
        self._event(RtpReceived(self, track, plain))
        return []

    def _handle_rtcp(self, part: object, nacked: dict[int, dict[int, None]]) -> None:
        """Act on one part of a compound packet; a NACK's numbers are added
        to ``nacked`` (answered once for the whole datagram)."""
        if isinstance(part, SenderReport):
            if self.recv_tracks:
                self._event(SenderReportReceived(self, part))
            return
        if not isinstance(part, RtcpRaw):
            return  # receiver reports: nothing to act on yet
        if part.packet_type == fb.RTCP_RTPFB and part.count == fb.FMT_NACK:
            nack = fb.parse_nack(part.body)
            self.stats.nack_asked += len(nack.lost)
            room = fb.MAX_NACKED - sum(len(v) for v in nacked.values())
            asked = nacked.setdefault(nack.media_ssrc, {})
            for seq in nack.lost:
                if seq not in asked:
                    if room <= 0:
                        break
                    asked[seq] = None
                    room -= 1
        elif part.packet_type == fb.RTCP_PSFB and part.count == fb.FMT_PLI:
            self.stats.pli += 1
            track = self._by_ssrc.get(fb.media_ssrc(part.body))
            if track is not None:
                self._event(KeyframeRequested(self, track.track, "pli"))
        elif part.packet_type == fb.RTCP_PSFB and part.count == fb.FMT_FIR:
            self.stats.fir += 1
            for ssrc in fb.fir_ssrcs(part.body):
                track = self._by_ssrc.get(ssrc)
                if track is not None:
                    self._event(KeyframeRequested(self, track.track, "fir"))

    def _answer_nacks(self, nacked: dict[int, dict[int, None]], now: float) -> list[Datagram]:
        """Resend what one datagram's NACKs asked, each number once, within
        the per-datagram cap, the token bucket and the hold-off."""
        source = self.source
        if source is None:
            return []
        budget = min(MAX_RESENT_PER_DATAGRAM, int(self._nacks.available(now)))
        shared = self.client_nacks
        if shared is not None:
            budget = min(budget, int(shared.available(now)))
        resent = self._resent
        horizon = now - NACK_HOLDOFF
        while resent:  # oldest first: stop at the first still held off
            oldest = next(iter(resent))
            if resent[oldest] > horizon:
                break
            del resent[oldest]
        stats = self.stats
        out: list[Datagram] = []
        for ssrc, seqs in nacked.items():
            track = self._by_ssrc.get(ssrc)
            if track is None:
                continue
            found: list[bytes] = []
            for seq in seqs:
                key = track.track << 16 | seq
                if key in resent:
                    stats.nack_repeated += 1
                    continue
                if budget <= 0:
                    stats.nack_limited += 1
                    continue
                p = source.lookup(track.track, seq)
                if p is None:
                    continue
                if len(resent) >= MAX_RESENT_REMEMBERED:
                    resent.popitem(last=False)
                resent[key] = now
                found.append(p)
                budget -= 1
            self._nacks.spend(len(found))
            if shared is not None:
                shared.spend(len(found))
            stats.nack_resent += len(found)
            out += self.send_rtp(track.track, found)
        return out

    # -- output -----------------------------------------------------------

    def send_rtp(self, track: int, packets: list[bytes]) -> list[Datagram]:
        """Protect the stream's shared packets of ``track`` for this peer."""
        addr = self.selected
        if addr is None:
            return []
        return [(p, addr) for p in self.protect_rtp(track, packets)]

    def protect_rtp(self, track: int, packets: list[bytes]) -> list[bytes]:
        """The shared packets of ``track`` protected for this peer, all for
        :attr:`selected` (the glue may send them in one UDP GSO call)."""
        srtp = self.srtp
        t = self.send_tracks.get(track)
        if srtp is None or self.selected is None or t is None or self.state is not PeerState.CONNECTED:
            return []
        protect = srtp.protect
        pt = t.payload_type
        out: list[bytes] = []
        for p in packets:
            if (p[1] & 0x7F) != pt:
                p = b"".join((p[:1], bytes(((p[1] & 0x80) | pt,)), p[2:]))
                self.stats.rtp_rewritten += 1
            try:
                out.append(protect(p))
            except ProtocolError:
                self.stats.protect_failed += 1
        self.stats.rtp_out += len(out)
        return out

    def send_rtcp(self, compound: bytes) -> list[Datagram]:
        """Protect one compound RTCP packet (e.g. the stream's sender reports)."""
        if self.srtp is None or self.selected is None or self.state is not PeerState.CONNECTED:
            return []
        try:
            return [(self.srtp.protect_rtcp(compound), self.selected)]
        except ProtocolError:
            self.stats.protect_failed += 1
            return []

    def request_keyframe(self, track: int) -> list[Datagram]:
        """A PLI to the publisher of a received track (WHIP), once it has sent RTP."""
        ssrc = self.recv_ssrc.get(track)
        if ssrc is None:
            return []
        return self.send_rtcp(fb.pli(self.rtcp_ssrc, ssrc))

    def receiver_report(self, blocks: list[ReportBlock]) -> list[Datagram]:
        """An RTCP RR about what the publisher sent us (WHIP), once it has sent RTP."""
        if not blocks:
            return []
        return self.send_rtcp(bytes(ReceiverReport(self.rtcp_ssrc, blocks[:31])))

    def handle_timer(self, now: float) -> list[Datagram]:
        """Consent expiry and DTLS retransmission; call at :meth:`deadline`."""
        if self.state is PeerState.CLOSED:
            return []
        if now - self.last_consent >= self.consent_timeout:
            self.close("consent expired" if self.state is not PeerState.NEW else "no ICE check")
            return []
        if self.state is not PeerState.CONNECTED and now >= self.connect_by:
            self.close("not connected in time")
            return []
        target = self.selected or self.nominated  # where the handshake's flights go
        if target is not None and self.state is PeerState.CHECKED:
            return [(d, target) for d in self.dtls.handle_timer()]
        return []

    def deadline(self, now: float) -> float:
        """When :meth:`handle_timer` must run next: consent expiry, or sooner
        while OpenSSL waits to retransmit a handshake flight."""
        expiry = self.last_consent + self.consent_timeout
        if self.state is not PeerState.CONNECTED:
            expiry = min(expiry, self.connect_by)
        if self.state is PeerState.CHECKED:
            wait = self.dtls.timeout()
            if wait is not None:
                return min(expiry, now + wait)
        return expiry

    def close(self, reason: str) -> list[Datagram]:
        """End the session: close_notify to the peer if DTLS was up."""
        if self.state is PeerState.CLOSED:
            return []
        out = self.dtls.close()
        addr = self.selected
        self.state = PeerState.CLOSED
        self.close_reason = reason
        self._event(PeerClosed(self, reason))
        return [(d, addr) for d in out] if addr is not None else []

    def _event(self, event: PeerEvent) -> None:
        if len(self.events) >= MAX_EVENTS:
            self.events_dropped += 1
            return
        self.events.append(event)

