"""This front's WebRTC: its UDP port, its DTLS certificate, its WHEP sessions.

Front i listens on `webrtc.udp_port + i` (any free port when that is 0):
with several fronts on one address, SO_REUSEPORT would spread a session's
datagrams by address hash over fronts that do not know it, so each front
has a port of its own and its answers name it. A WHEP session lives in the
front that answered its offer; a DELETE or PATCH that reaches another front
is passed on (`hub.api.webrtc.routes`: the stream's shard asks the front
the session's id names, `session_id`).

Bounds: `MAX_SESSIONS` per front (the mux's `max_peers`), and
`MAX_PENDING_PER_CLIENT` sessions answered but not yet connected per client
address (what an offer costs before the client proves anything; connected
players are players, however many share a NAT); a session that never
checks or stops refreshing consent ends after `webrtc.consent_timeout`
(30 s). The sessions of one client address share one NACK budget
(`peer.CLIENT_NACK_BURST`), whatever their number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import Counter
from typing import TYPE_CHECKING, Protocol

from ...client_key import client_key
from ...config import Config
from ...errors import ServiceUnavailable, Unprocessable
from ...ipc import messages as M
from ...ipc.messages import SessionOpArgs
from ...media.webrtc.answer import LocalParams, whep_answer
from ...media.webrtc.dtls import CertificateOnDemand, DtlsServer
from ...media.webrtc.mux import WebRtcMux
from ...media.webrtc.offer import WebRtcOffer
from ...media.webrtc.peer import (CLIENT_NACK_BURST, CLIENT_NACK_RATE, KeyframeRequested, NackBudget, PeerClosed,
                                  PeerConnected, PeerEvent, WebRtcPeer)
from ...media.webrtc.trickle import answer_session_op
from ...webrtc_udp import WebRtcSocket, bind_for_listen, candidates_for
from ..play.consumer import Consumer
from .whep import WhepFanout, WhepSession, has_bframes

if TYPE_CHECKING:
    from ..play.views import StreamView, StreamViews

log = logging.getLogger("hub.api.webrtc")

__all__ = ["WebRtcFront", "Counts", "ID_KEY_LABEL", "MAX_SESSIONS", "MAX_PENDING_PER_CLIENT", "front_of", "session_id"]

#: WHEP sessions per front.
MAX_SESSIONS = 10000
#: WHEP sessions one client address may hold in one front before they connect.
MAX_PENDING_PER_CLIENT = 64
BFRAMES = ("the stream has B-frames (decode order differs from presentation order): WebRTC players "
           "cannot play it; publish it without B-frames (x264: -bf 0, or a baseline profile)")


class Counts(Protocol):
    """The front's counters of WHEP sessions made and live (the runtime's `webrtc` group)."""

    webrtc_total: int
    webrtc_active: int


#: What the id's tag is keyed with (`TokenService.derive`).
ID_KEY_LABEL = b"whep session id"
_TAG_BYTES = 12


def _tag(key: bytes, front: str, nonce: str) -> str:
    mac = hmac.new(key, f"{front}-{nonce}".encode(), hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(mac).decode()


def session_id(front: int, key: bytes) -> str:
    """A WHEP session's id: the front that holds it, 128 random bits (the
    URL is the session's capability) and a tag over both keyed with what
    every front holds (`ID_KEY_LABEL`): `3-Xq...`. A DELETE or PATCH that
    reaches another front is passed to the front the id names, and only
    when the tag is ours (`front_of`)."""
    nonce = secrets.token_urlsafe(16)
    return f"{front}-{nonce}.{_tag(key, str(front), nonce)}"


def front_of(sid: str, key: bytes) -> int | None:
    """The front a session id names, or None for an id no front made: a
    made-up id is answered where it arrives, costing no other front a call."""
    head, sep, rest = sid.partition("-")
    if not sep or not head.isdigit() or len(head) > 4:
        return None
    nonce, dot, tag = rest.rpartition(".")
    if not dot or not nonce or not hmac.compare_digest(tag.encode(), _tag(key, head, nonce).encode()):
        return None
    return int(head)


class WebRtcFront:
    def __init__(self, config: Config, index: int, views: StreamViews, counts: Counts) -> None:
        self.config = config
        self.index = index
        self.views = views
        self.certificate = CertificateOnDemand()
        self.mux = WebRtcMux(max_peers=MAX_SESSIONS)
        self.port: WebRtcSocket | None = None
        self.failure = ""
        self.sessions: dict[str, WhepSession] = {}
        self.pending: Counter[str] = Counter()  # answered, not connected, by client address
        #: Each client address's NACK budget, and how many sessions share it.
        self.nack_budgets: dict[str, tuple[NackBudget, int]] = {}
        self.counts = counts
        #: What session ids are tagged with: the fronts' shared key
        #: (`FrontContext.apply_store`, before the front serves); a key of
        #: its own until then.
        self.id_key = secrets.token_bytes(32)

    # -- life ---------------------------------------------------------------------
    def start(self) -> None:
        """Bind this front's UDP port; without it WHEP answers 503."""
        c = self.config
        base = c.webrtc.udp_port
        port = base + self.index if base else 0
        try:
            sock = bind_for_listen(c.listen_hosts, port)
        except OSError as e:
            self.failure = f"WebRTC UDP port {c.host}:{port} unavailable: {e.strerror}"
            log.error("%s; WHEP is off in this front", self.failure)
            return
        self.port = WebRtcSocket(sock, self.mux, self._on_events)
        log.info("WebRTC on UDP %s:%d", sock.getsockname()[0], self.port.port)

    def close(self) -> None:
        for s in list(self.sessions.values()):
            s.close("server stopping")
        if self.port is not None:
            self.port.close()
            self.port = None

    # -- WHEP --------------------------------------------------------------------
    def whep(self, view: StreamView, offer: WebRtcOffer, client: tuple[str, int], request_host: str) -> tuple[
            WhepSession, str]:
        """Answer a player's offer for the stream of `view`: (session, SDP answer).
        BadRequest (no codec in common), Unprocessable (B-frames),
        ServiceUnavailable (no port, too many sessions); nothing changes then."""
        port = self.port
        if port is None:
            raise ServiceUnavailable(self.failure or "WebRTC is not running")
        cert = self.certificate()
        if len(self.sessions) >= MAX_SESSIONS:
            raise ServiceUnavailable("WebRTC: too many sessions")
        if self.pending[client_key(client[0])] >= MAX_PENDING_PER_CLIENT:
            raise ServiceUnavailable(f"WebRTC: {MAX_PENDING_PER_CLIENT} unconnected sessions from one address "
                                     f"at most")
        fanout = view.fanout("whep", lambda v: WhepFanout(v, self))
        if fanout.bframes or (fanout.video >= 0 and has_bframes(view.gop(to_head=True), fanout.video)):
            fanout.bframes = True
            raise Unprocessable(BFRAMES)
        dtls = DtlsServer(cert, offer.fingerprints)  # ProtocolError: no usable fingerprint
        ufrag = secrets.token_hex(4)
        while ufrag in self.mux.by_ufrag:
            ufrag = secrets.token_hex(4)
        local = LocalParams(ice_ufrag=ufrag, ice_pwd=secrets.token_hex(16), fingerprint=cert.fingerprint,
                            candidates=candidates_for(self.config, port, request_host),
                            origin_id=secrets.randbits(62))
        answer = whep_answer(offer, view.desc.tracks, fanout.out.ssrcs, local)
        if not fanout.sessions:
            # The first player's payload type numbers become the shared packets':
            # players of the same browser then need no rewrite.
            for t in answer.send_tracks:
                fanout.out.set_payload_type(t.track, t.payload_type)
        sid = session_id(self.index, self.id_key)
        host = client_key(client[0])
        budget, users = self.nack_budgets.get(host) or (NackBudget(CLIENT_NACK_BURST, CLIENT_NACK_RATE, time.monotonic()), 0)
        peer = WebRtcPeer(sid, local_ufrag=ufrag, local_pwd=local.ice_pwd, remote_ufrag=offer.ice_ufrag,
                          remote_pwd=offer.ice_pwd, dtls=dtls, now=time.monotonic(),
                          send_tracks=answer.send_tracks, source=fanout.out, client_nacks=budget,
                          consent_timeout=self.config.webrtc.consent_timeout)
        self.mux.add(peer)  # ServiceUnavailable when full, before anything changed

        def gone(c: Consumer) -> None:
            self.counts.webrtc_active -= 1
            view.drop_consumer(c)

        session = WhepSession(sid, f'"{secrets.token_hex(8)}"', fanout, peer, client, gone)
        fanout.add(session)
        self.sessions[sid] = session
        self.pending[host] += 1
        self.nack_budgets[host] = (budget, users + 1)
        self.counts.webrtc_total += 1
        self.counts.webrtc_active += 1
        port.watch(peer)
        log.info("%s: WHEP session %s… for %s", view.desc.path, sid[:6], client[0])
        return session, answer.sdp

    def forget(self, session: WhepSession) -> None:
        """A session ended: its peer leaves the port (close_notify goes out)."""
        if self.sessions.get(session.id) is not session:
            return
        del self.sessions[session.id]
        self._settle(session)
        host = client_key(session.client[0])
        budget, users = self.nack_budgets.pop(host, (None, 0))
        if budget is not None and users > 1:
            self.nack_budgets[host] = (budget, users - 1)
        out = self.mux.remove(session.peer)
        if self.port is not None and out:
            self.port.send(out)

    def _settle(self, session: WhepSession) -> None:
        """The session connected or ended: it no longer counts as pending."""
        if not session.pending:
            return
        session.pending = False
        host = client_key(session.client[0])
        self.pending[host] -= 1
        if self.pending[host] <= 0:
            del self.pending[host]

    def keyframe_wanted(self, view: StreamView) -> None:
        self.views.shards.notify(view.desc.path, M.REQUEST_KEYFRAME({"stream_id": view.stream_id}))

    def _on_events(self, events: list[PeerEvent]) -> None:
        for e in events:
            session = self.sessions.get(e.peer.session_id)
            if session is None:
                continue
            if isinstance(e, PeerConnected):
                self._settle(session)
                session.connected()
            elif isinstance(e, PeerClosed):
                session.close(e.reason)
            elif isinstance(e, KeyframeRequested):
                session.fanout.keyframe_requested()

    # -- session requests (DELETE, PATCH), local or passed on by another front ---------
    def session_op(self, args: SessionOpArgs) -> str | None:
        """Act on a session of this front: "ok", "precondition" (If-Match
        names another ETag), "restart" (an ICE restart: not supported), or
        None when the session is not here."""
        session = self.sessions.get(str(args.get("id", "")))
        return answer_session_op(session, args, lambda: session.close("DELETE") if session else None)
