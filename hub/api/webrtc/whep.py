"""WHEP players of one stream in this front: one packetisation, SRTP per player.

`WhepFanout` is a fan-out of the stream's view (like the FLV and RTP ones):
each batch of ring entries is packetised to RTP once
(`hub.media.webrtc.stream_out.WebRtcStreamOut`), and every connected player
only protects those packets with its own SRTP keys and sends them, one
peer's packets of the turn together (UDP GSO). A player that joins gets the
cached GOP, packetised apart and numbered to run into the live packets, as
soon as its DTLS is up; without one it starts at the next keyframe. A send
the kernel refuses makes that player skip to the next keyframe.

The per-player work of a batch is done `SEND_CHUNK` players per loop turn
(the first chunk at once), so a front with many players keeps answering its
links and datagrams between chunks. A front that falls behind (more than
`BEHIND_UNITS` video frames queued or arriving at once: it has no CPU left
for its players) sheds the stale frames and starts every player again at
the newest keyframe, instead of sending late video nobody can use.

Each `WhepSession` is also a `Consumer` of the view (API lists, kicks,
counts) through `PeerTransport`, a stand-in for the TCP transport players
of other protocols have: closing it ends the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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

__all__ = ["WhepFanout", "WhepSession", "PeerTransport", "has_bframes", "SR_INTERVAL", "PLI_MIN_INTERVAL",
           "BEHIND_UNITS", "SEND_CHUNK"]

#: Seconds between RTCP sender reports to the players.
SR_INTERVAL = 5.0
#: Players' keyframe requests go to the source at most this often per stream.
PLI_MIN_INTERVAL = 1.0
#: Video frames in one batch past which the front is behind: the stale ones
#: are shed (about a second at 25 fps).
BEHIND_UNITS = 25
#: Player sends done per loop turn.
SEND_CHUNK = 100

#: (track, starts a keyframe, RTP packets) of one ring entry.
Unit = tuple[int, bool, list[bytes]]


class _Batch:
    """One batch's packets and the players still to send them to."""

    __slots__ = ("units", "sessions", "cursor", "video")

    def __init__(self, units: list[Unit], sessions: list[WhepSession], video: int) -> None:
        self.units = units
        self.sessions = sessions
        self.cursor = 0
        self.video = video


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
        self.pending = True  # answered, not yet connected (a bound per client address)
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
        if peer.selected is None:
            return  # no address answered ours yet: nothing sent, a keyframe still awaited
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
        self.shed = 0  # ring entries not sent because the front fell behind
        self._sr_timer: asyncio.TimerHandle | None = None
        self._last_pli = 0.0
        self._last_shed_log = -10.0
        self._backlog: deque[_Batch] = deque()
        self._queued_video = 0  # video frames in the backlog
        self._draining: asyncio.Handle | None = None

    def add(self, session: WhepSession) -> None:
        self.sessions.append(session)
        self.consumers.append(session.consumer)
        if self._sr_timer is None:
            self._sr_timer = asyncio.get_running_loop().call_later(SR_INTERVAL, self._send_reports)

    def remove(self, session: WhepSession) -> None:
        if session in self.sessions:
            self.sessions.remove(session)
        if not self.sessions:
            if self._sr_timer is not None:
                self._sr_timer.cancel()
                self._sr_timer = None
            if self._draining is not None:
                self._draining.cancel()
                self._draining = None
            self._backlog.clear()
            self._queued_video = 0

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
        video = self.video
        frames = sum(1 for e in entries if e.track == video) if video >= 0 else 0
        if frames and self._queued_video + frames > BEHIND_UNITS:
            entries = self._catch_up(entries, live)
            frames = sum(1 for e in entries if e.track == video)
        out = self.out
        now = time.time()
        units: list[Unit] = []
        for e in entries:
            pkts = out.packetize(e.track, e.data, e.pts, keyframe=e.keyframe,
                                 marker=bool(e.flags & FLAG_MARKER), now=now)
            if pkts:
                units.append((e.track, e.keyframe and (e.track == video or video < 0), pkts))
        if units:
            self._backlog.append(_Batch(units, live, frames))
            self._queued_video += frames
            if self._draining is None:
                self._drain()

    def _drain(self) -> None:
        """Send queued batches, SEND_CHUNK players per turn, oldest batch first
        (each player gets the batches in order)."""
        self._draining = None
        budget = SEND_CHUNK
        backlog = self._backlog
        while backlog and budget > 0:
            b = backlog[0]
            end = min(len(b.sessions), b.cursor + budget)
            units = b.units
            for s in b.sessions[b.cursor:end]:
                if not s.closed:
                    s.send(units)
            budget -= end - b.cursor
            b.cursor = end
            if end >= len(b.sessions):
                backlog.popleft()
                self._queued_video -= b.video
        if backlog:
            self._draining = asyncio.get_running_loop().call_soon(self._drain)

    def _catch_up(self, entries: list[RingEntry], live: list[WhepSession]) -> list[RingEntry]:
        """Behind: drop what is queued, keep from the batch's last keyframe
        (nothing if it has none), and every player waits for that keyframe."""
        video = self.video
        behind = self._queued_video + sum(1 for e in entries if e.track == video)
        self.shed += sum(len(b.units) for b in self._backlog)
        self._backlog.clear()
        self._queued_video = 0
        start = next((i for i in range(len(entries) - 1, -1, -1)
                      if entries[i].track == video and entries[i].keyframe), len(entries))
        self.shed += start
        now = time.monotonic()
        if now - self._last_shed_log >= 10.0:
            self._last_shed_log = now
            log.warning("%s: WHEP players %d frames behind (no CPU left?): %d entries shed so far",
                        self.view.desc.path, behind, self.shed)
        for s in live:
            s.skipping = True
        return entries[start:]

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
