"""WHEP players of one stream in this front: one packetisation, SRTP per player.

`WhepFanout` is a fan-out of the stream's view (like the FLV and RTP ones):
each batch of ring entries is packetised to RTP once
(`hub.media.webrtc.stream_out.WebRtcStreamOut`), and every connected player
only protects those packets with its own SRTP keys and sends them, one
peer's packets of the turn together (UDP GSO). A player that joins gets the
cached GOP, packetised apart and numbered to run into the live packets, as
soon as its DTLS is up; without one it starts at the next keyframe. A send
the kernel refuses makes that player skip to the next keyframe.

Each `WhepSession` is also a `Consumer` of the view (API lists, kicks,
counts) through `PeerTransport`, a stand-in for the TCP transport players
of other protocols have: closing it ends the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from ...media.stream_desc import FLAG_MARKER, StreamDesc
from ...media.webrtc.peer import PeerState, WebRtcPeer
from ...media.webrtc.stream_out import WebRtcStreamOut
from ...ring import RingEntry
from ...webrtc_udp import WebRtcSocket
from ..play.consumer import Consumer

if TYPE_CHECKING:
    from ..play.views import StreamView

log = logging.getLogger("hub.api.webrtc.whep")

__all__ = ["WhepFanout", "WhepSession", "PeerTransport", "has_bframes", "SR_INTERVAL", "PLI_MIN_INTERVAL"]

#: Seconds between RTCP sender reports to the players.
SR_INTERVAL = 5.0
#: Players' keyframe requests go to the source at most this often per stream.
PLI_MIN_INTERVAL = 1.0

#: (track, starts a keyframe, RTP packets) of one ring entry.
Unit = tuple[int, bool, list[bytes]]


def has_bframes(entries: list[RingEntry], video: int) -> bool:
    """Whether the video track's decode order differs from its presentation
    order (B-frames): WebRTC players decode in arrival order and freeze."""
    return any(e.track == video and e.dts != e.pts for e in entries)


class WhepHost(Protocol):
    """What the fan-out needs of the front's WebRTC service."""

    port: WebRtcSocket | None

    def forget(self, session: WhepSession) -> None: ...

    def keyframe_wanted(self, view: StreamView) -> None: ...


class PeerTransport(asyncio.Transport):
    """A WHEP session seen as a player's transport by `Consumer`: nothing is
    written through it (media goes over UDP), closing it ends the session."""

    def __init__(self, session: WhepSession) -> None:
        super().__init__()
        self._session = session

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._session.client
        return default

    def is_closing(self) -> bool:
        return self._session.closed

    def close(self) -> None:
        self._session.close("closed by the server")

    def abort(self) -> None:
        self._session.close("aborted")

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass


class WhepSession:
    """One WHEP player: its peer, its place in the fan-out, its consumer."""

    def __init__(self, sid: str, etag: str, fanout: WhepFanout, peer: WebRtcPeer,
                 client: tuple[str, int], on_close: Any) -> None:
        self.id = sid
        self.etag = etag
        self.fanout = fanout
        self.path = fanout.view.desc.path
        self.peer = peer
        self.client = client
        self.ready = False  # DTLS up and the GOP sent: live packets from now on
        self.skipping = False
        self.closed = False
        self.close_reason = ""
        self.consumer = Consumer(PeerTransport(self), "RTP", f"net=webrtc,{_addr(client)}", on_close=on_close)

    def connected(self) -> None:
        """DTLS is up: the cached GOP, then the live packets."""
        if self.closed or self.ready:
            return
        peer = self.peer
        if peer.selected is not None:
            self.consumer.extra = f"net=webrtc,{_addr(peer.selected)}"
        fan = self.fanout
        entries = fan.view.gop()
        units = fan.out.replay((e.track, e.data, e.pts, e.keyframe, bool(e.flags & FLAG_MARKER))
                               for e in entries)
        self.ready = True
        self.skipping = fan.video >= 0
        self.send(units)

    def send(self, units: list[Unit]) -> None:
        """This turn's packets, protected for this peer, in one go."""
        peer = self.peer
        protect = peer.protect_rtp
        out: list[bytes] = []
        for track, key, pkts in units:
            if self.skipping:
                if not key:
                    continue
                self.skipping = False
            out += protect(track, pkts)
        port = self.fanout.host.port
        if not out or port is None or peer.selected is None:
            return
        c = self.consumer
        if not port.send_packets(out, peer.selected):
            c.dropped_batches += 1
            self.skipping = self.fanout.video >= 0
        c.outbytes += sum(len(p) for p in out)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        log.info("%s: WHEP session %s… ended: %s", self.path, self.id[:6], reason)
        self.fanout.remove(self)
        self.consumer.close()  # tells the view (and the counters)
        self.fanout.host.forget(self)


def _addr(a: tuple[str, int] | tuple[Any, ...]) -> str:
    host = str(a[0])
    return f"[{host}]:{a[1]}" if ":" in host else f"{host}:{a[1]}"


class WhepFanout:
    """The WHEP players of one stream in this front."""

    def __init__(self, view: StreamView, host: WhepHost) -> None:
        self.view = view
        self.host = host
        self.consumers: list[Consumer] = []
        self.sessions: list[WhepSession] = []
        self.out = WebRtcStreamOut(view.desc)
        self.video = next((t.index for t in view.desc.tracks if t.kind == "video" and t.index in self.out.tracks),
                          -1)
        self.bframes = False
        self._sr_timer: asyncio.TimerHandle | None = None
        self._last_pli = 0.0

    def add(self, session: WhepSession) -> None:
        self.sessions.append(session)
        self.consumers.append(session.consumer)
        if self._sr_timer is None:
            self._sr_timer = asyncio.get_running_loop().call_later(SR_INTERVAL, self._send_reports)

    def remove(self, session: WhepSession) -> None:
        if session in self.sessions:
            self.sessions.remove(session)
        if not self.sessions and self._sr_timer is not None:
            self._sr_timer.cancel()
            self._sr_timer = None

    def on_desc(self, desc: StreamDesc) -> None:
        """New parameter sets: keyframes get the new SPS/PPS in front."""
        for t in desc.tracks:
            out = self.out.tracks.get(t.index)
            if out is not None:
                out.track = t

    def feed(self, entries: list[RingEntry]) -> None:
        live = [s for s in self.sessions if s.ready]
        if not live:
            return
        if self.video >= 0 and has_bframes(entries, self.video):
            self._refuse_bframes()
            return
        out = self.out
        video = self.video
        now = time.time()
        units: list[Unit] = []
        for e in entries:
            pkts = out.packetize(e.track, e.data, e.pts, keyframe=e.keyframe,
                                 marker=bool(e.flags & FLAG_MARKER), now=now)
            if pkts:
                units.append((e.track, e.keyframe and (e.track == video or video < 0), pkts))
        if units:
            for s in live:
                s.send(units)

    def _refuse_bframes(self) -> None:
        self.bframes = True
        log.warning("%s: the stream has B-frames; WebRTC players cannot play it, closing %d",
                    self.view.desc.path, len(self.sessions))
        for s in list(self.sessions):
            s.close("the stream has B-frames")

    def _send_reports(self) -> None:
        """Sender reports (lip sync, the players' clock estimate) every SR_INTERVAL."""
        self._sr_timer = None
        port = self.host.port
        if not self.sessions or port is None:
            return
        reports = self.out.sender_reports(time.time())
        for s in self.sessions:
            if s.ready and s.peer.state is PeerState.CONNECTED:
                for r in reports:
                    port.send(s.peer.send_rtcp(r))
        self._sr_timer = asyncio.get_running_loop().call_later(SR_INTERVAL, self._send_reports)

    def keyframe_requested(self) -> None:
        """A player asked for a keyframe (PLI/FIR): ask the source, at most
        once per PLI_MIN_INTERVAL for the whole stream."""
        now = time.monotonic()
        if now - self._last_pli >= PLI_MIN_INTERVAL:
            self._last_pli = now
            self.host.keyframe_wanted(self.view)
