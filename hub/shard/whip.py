"""WHIP publishers: WebRTC ingest in the shard that owns the stream.

A front reads `POST /streams/PATH/whip` (the push right checked) and asks the
owning shard (`whip_offer`); the shard answers from its own UDP port
(`webrtc.udp_port + fronts + shard index`, any free port when that is 0),
so the publisher's media reaches the process that writes the ring with no
second hop: decrypted RTP goes per track to an `IngestSession`, as an RTSP
publisher's does (`hub.shard.publish`). docs/architecture.md weighs this
against forwarding RTP from a front.

The stream goes live when DTLS is up (an offer that never connects cannot
replace a live publisher), like RTSP's RECORD. On the ingest's tick (every
second): a receiver report per track (browsers adapt their rate to it),
and every `PLI_INTERVAL` a PLI, since browsers send keyframes only when
asked and the ring's GOP must stay fresh for joining players; players'
own keyframe requests reach here too (`request_keyframe`), rate-limited.
No consent refresh or no media for `webrtc.consent_timeout` ends the
session and the stream.
"""

from __future__ import annotations

import logging
import secrets
import struct
import time
from collections import Counter
from typing import Callable

from ..child import ChildArgs
from ..client_key import client_key
from ..errors import Draining, ServiceUnavailable
from ..ipc.messages import SessionOpArgs, WhipAnswer, WhipOfferArgs
from ..media.rtcp import SenderReport
from ..media.stream_desc import TrackDesc
from ..media.webrtc.answer import LocalParams, whip_answer
from ..media.webrtc.dtls import CertificateOnDemand, DtlsServer
from ..media.webrtc.mux import WebRtcMux
from ..media.webrtc.offer import parse_offer
from ..media.webrtc.peer import (PeerClosed, PeerConnected, PeerEvent, RecvTrack, RtpReceived,
                                 SenderReportReceived, WebRtcPeer)
from ..media.webrtc.reception import ReceptionStats
from ..media.webrtc.trickle import answer_session_op
from ..placement import canonical_path
from ..webrtc_udp import WebRtcSocket, bind_for_listen, candidates_for
from .ingest import IngestSession, PacketSink
from .streams import StreamTable

log = logging.getLogger("hub.shard.whip")

__all__ = ["WhipHost", "WhipSession", "MAX_SESSIONS", "MAX_SESSIONS_PER_CLIENT", "PLI_INTERVAL",
           "RR_INTERVAL", "PLI_MIN_GAP"]

#: WHIP sessions per shard, and per publisher address.
MAX_SESSIONS = 1000
MAX_SESSIONS_PER_CLIENT = 8
#: Seconds between receiver reports (the ingest's tick) and between PLIs.
RR_INTERVAL = 1.0
PLI_INTERVAL = 2.0
#: Keyframe requests of players are passed on at most this often.
PLI_MIN_GAP = 0.5
_SEQ_TS = struct.Struct(">HI")


class WhipSession:
    """One WHIP publisher: its peer, and its stream through an IngestSession."""

    def __init__(self, host: WhipHost, sid: str, etag: str, path: str, client: str, peer: WebRtcPeer,
                 tracks: list[RecvTrack], user: str = "") -> None:
        self.host = host
        self.user = user
        self.started = time.monotonic()
        self.id = sid
        self.etag = etag
        self.path = path
        self.client = client
        self.peer = peer
        self.recv = tracks
        self.closed = False
        self.ingest = IngestSession(host.streams, path, client, self, timeout=host.consent_timeout,
                                    on_tick=self._tick)
        self.sinks: list[tuple[PacketSink, PacketSink]] = []
        self.reception: dict[int, ReceptionStats] = {}
        self._last_pli = 0.0

    # -- the stream ------------------------------------------------------------------
    def go_live(self) -> None:
        """DTLS is up: publish the negotiated tracks and ask for a keyframe."""
        if self.closed or self.ingest.live:
            return
        tracks = [TrackDesc(r.track, r.kind, r.codec, r.payload_type, r.clock_rate, channels=r.channels,
                            fmtp=r.fmtp) for r in self.recv]
        self.ingest.go_live(tracks)
        self.sinks = [self.ingest.rtp_sinks(t.index) for t in tracks]
        self.ingest.start(RR_INTERVAL)
        self.request_keyframe(force=True)
        log.info("%s: WHIP publisher %s live (%s)", self.path, self.client, ", ".join(r.codec for r in self.recv))

    def rtp(self, e: RtpReceived, now: float) -> None:
        if not self.sinks:
            return
        packet = e.packet
        index = e.track.track
        self.ingest.count(len(packet))
        stats = self.reception.get(index)
        if stats is None:
            stats = self.reception[index] = ReceptionStats(int.from_bytes(packet[8:12], "big"),
                                                           e.track.clock_rate)
        seq, ts = _SEQ_TS.unpack_from(packet, 2)
        stats.packet(seq, ts, now)
        self.sinks[index][0](packet)

    def sender_report(self, report: SenderReport, now: float) -> None:
        for index, stats in self.reception.items():
            if stats.ssrc == report.ssrc:
                stats.sender_report(report.ntp, now)
                if index < len(self.sinks):
                    self.sinks[index][1](bytes(report))

    # -- RTCP to the publisher, on the ingest's tick -------------------------------------
    def _tick(self, now: float) -> None:
        port = self.host.port
        if port is None or self.closed:
            return
        blocks = [b for b in (s.block(now) for s in self.reception.values()) if b is not None]
        port.send(self.peer.receiver_report(blocks))
        if now - self._last_pli >= PLI_INTERVAL:
            self.request_keyframe(force=True)

    def request_keyframe(self, force: bool = False) -> None:
        """A PLI for the video track (periodic, or a player asked: rate-limited)."""
        now = time.monotonic()
        if not force and now - self._last_pli < PLI_MIN_GAP:
            return
        video = next((r.track for r in self.recv if r.kind == "video"), None)
        port = self.host.port
        if video is None or port is None:
            return
        out = self.peer.request_keyframe(video)
        if out:
            self._last_pli = now
            port.send(out)

    # -- the end -------------------------------------------------------------------------
    def close(self) -> None:
        """The publisher left, timed out, was DELETEd, or another source took the path."""
        if self.closed:
            return
        self.closed = True
        self.ingest.close()
        self.host.forget(self)
        log.info("%s: WHIP publisher %s closed", self.path, self.client)


class WhipHost:
    """The shard's WHIP side: its UDP port, certificate and sessions."""

    def __init__(self, args: ChildArgs, streams: StreamTable) -> None:
        self.config = args.config
        self.index = args.index
        self.streams = streams
        self.consent_timeout = self.config.webrtc.consent_timeout
        self.mux = WebRtcMux(max_peers=MAX_SESSIONS)
        self.port: WebRtcSocket | None = None
        self.certificate = CertificateOnDemand()
        self.failure = ""
        self.sessions: dict[str, WhipSession] = {}
        self.per_client: Counter[str] = Counter()
        self.total = 0
        self.draining = False
        #: Called with each session that ends (the admission grant it held, the access log).
        self.on_closed: list[Callable[[WhipSession], None]] = []

    def start(self) -> None:
        c = self.config
        base = c.webrtc.udp_port
        port = base + c.front_count + self.index if base else 0
        try:
            sock = bind_for_listen(c.listen_hosts, port)
        except OSError as e:
            self.failure = f"WebRTC UDP port {c.host}:{port} unavailable: {e.strerror}"
            log.error("%s; WHIP is off in this shard", self.failure)
            return
        self.port = WebRtcSocket(sock, self.mux, self._on_events)
        log.info("WHIP on UDP %s:%d", sock.getsockname()[0], self.port.port)

    def close(self) -> None:
        for s in list(self.sessions.values()):
            s.close()
        if self.port is not None:
            self.port.close()
            self.port = None

    # -- requests from the fronts -----------------------------------------------------
    def offer(self, args: WhipOfferArgs) -> WhipAnswer:
        """`whip_offer`: answer a publisher's offer."""
        port = self.port
        if port is None:
            raise ServiceUnavailable(self.failure or "WHIP is not running")
        cert = self.certificate()
        if self.draining:
            raise Draining("draining: not taking new publishers")
        path = canonical_path(str(args["path"]))
        client = str(args.get("client") or "")
        host = client_key(client.rpartition(":")[0])  # an IPv6 client by its /64
        if len(self.sessions) >= MAX_SESSIONS:
            raise ServiceUnavailable("WHIP: too many sessions")
        if self.per_client[host] >= MAX_SESSIONS_PER_CLIENT:
            raise ServiceUnavailable(f"WHIP: {MAX_SESSIONS_PER_CLIENT} sessions from one address at most")
        offer = parse_offer(args["sdp"])
        dtls = DtlsServer(cert, offer.fingerprints)
        ufrag = secrets.token_hex(4)
        while ufrag in self.mux.by_ufrag:
            ufrag = secrets.token_hex(4)
        local = LocalParams(ice_ufrag=ufrag, ice_pwd=secrets.token_hex(16), fingerprint=cert.fingerprint,
                            candidates=candidates_for(self.config, port, str(args.get("host") or "")),
                            origin_id=secrets.randbits(62))
        answer = whip_answer(offer, local)
        sid = secrets.token_urlsafe(16)
        peer = WebRtcPeer(sid, local_ufrag=ufrag, local_pwd=local.ice_pwd, remote_ufrag=offer.ice_ufrag,
                          remote_pwd=offer.ice_pwd, dtls=dtls, now=time.monotonic(), recv_tracks=answer.recv_tracks,
                          consent_timeout=self.consent_timeout)
        self.mux.add(peer)
        session = WhipSession(self, sid, f'"{secrets.token_hex(8)}"', path, client, peer, answer.recv_tracks,
                              str(args.get("user") or ""))
        self.sessions[sid] = session
        self.per_client[host] += 1
        self.total += 1
        port.watch(peer)
        log.info("%s: WHIP offer from %s answered (session %s…)", path, client, sid[:6])
        return {"id": sid, "sdp": answer.sdp, "etag": session.etag}

    def session_op(self, args: SessionOpArgs) -> str | None:
        """`whip_session`: DELETE or PATCH; the same answers as a WHEP session's."""
        session = self.sessions.get(str(args.get("id", "")))
        return answer_session_op(session, args, lambda: session.close() if session else None)

    def forget(self, session: WhipSession) -> None:
        if self.sessions.get(session.id) is not session:
            return
        del self.sessions[session.id]
        host = client_key(session.client.rpartition(":")[0])
        self.per_client[host] -= 1
        if self.per_client[host] <= 0:
            del self.per_client[host]
        out = self.mux.remove(session.peer)
        if self.port is not None and out:
            self.port.send(out)
        for cb in self.on_closed:
            cb(session)

    def _on_events(self, events: list[PeerEvent]) -> None:
        now = time.monotonic()
        sessions = self.sessions
        for e in events:
            session = sessions.get(e.peer.session_id)
            if session is None:
                continue
            if isinstance(e, RtpReceived):
                session.rtp(e, now)
            elif isinstance(e, PeerConnected):
                session.go_live()
            elif isinstance(e, PeerClosed):
                session.close()
            elif isinstance(e, SenderReportReceived):
                session.sender_report(e.report, now)

    def stats(self) -> dict[str, int]:
        return {"total": self.total, "active": len(self.sessions)}
