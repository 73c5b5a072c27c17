"""RTP fan-out: RTSP players of one stream in a front.

Each ring entry is packetised once per stream (one packetiser per track,
shared by every player, so sequence numbers and timestamps are the same for
all and continuous for each). TCP players with the same interleaved channels
get one shared blob per batch; UDP players get the same packets, sent from
their own server port; multicast players share one send per packet.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ...errors import UnsupportedTransport
from ...media.rtcp import SenderReport, unix_to_ntp
from ...media.rtsp import frame_header
from ...media.rtsp.transport import TransportSpec
from ...media.stream_desc import AUDIO_AAC, FLAG_MARKER, FLAG_RTP_PAYLOAD, StreamDesc, TrackDesc
from ...rate import TokenBucket
from ...ring import RingEntry
from ...udp_ports import PortPairPool
from .consumer import Consumer, cap_send_buffer

if TYPE_CHECKING:
    from .views import StreamView

log = logging.getLogger("hub.api.play.rtp")

_SEQ = struct.Struct(">H")
#: Seconds between RTCP sender reports to players.
SR_INTERVAL = 5.0
_HDR = struct.Struct(">BBHII")


class Packetizer(Protocol):
    def packetize(self, data: bytes, ts: int) -> list[bytes]: ...


class PassthroughPacketizer:
    """Other payloads (G.711, Opus...) go out as received, re-headed."""

    def __init__(self, pt: int, ssrc: int, seq: int) -> None:
        self.pt, self.ssrc, self.seq = pt, ssrc, seq

    def packetize_flags(self, data: bytes, ts: int, marker: bool) -> list[bytes]:
        head = _HDR.pack(0x80, (0x80 if marker else 0) | self.pt, self.seq, ts & 0xFFFFFFFF, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        return [head + data]


def make_packetizer(track: TrackDesc, ssrc: int, seq: int) -> Any:
    from ...media import rtp_aac, rtp_h264, rtp_h265

    if track.codec == "H264":
        return rtp_h264.H264Packetizer(track.payload_type, ssrc, start_seq=seq)
    if track.codec == "H265":
        return rtp_h265.H265Packetizer(track.payload_type, ssrc, start_seq=seq)
    if track.codec == AUDIO_AAC:
        return rtp_aac.AacPacketizer(track.payload_type, ssrc, start_seq=seq)
    return PassthroughPacketizer(track.payload_type, ssrc, seq)


class TrackOut:
    """Per-track output state shared by all players of the stream."""

    def __init__(self, track: TrackDesc) -> None:
        self.track = track
        self.ssrc = random.getrandbits(32)
        self.ts_offset = random.getrandbits(32)
        self.next_seq = random.getrandbits(16)
        self.packetizer = make_packetizer(track, self.ssrc, self.next_seq)
        self.last_ts = self.ts_offset
        self.last_at = time.time()  # wall time of the last packetised entry
        self.packet_count = 0
        self.octet_count = 0

    def packets(self, e: RingEntry) -> list[bytes]:
        ts = (e.pts + self.ts_offset) & 0xFFFFFFFF
        self.last_ts = ts
        p = self.packetizer
        if isinstance(p, PassthroughPacketizer):
            pkts = p.packetize_flags(e.data, ts, bool(e.flags & FLAG_MARKER))
        elif e.flags & FLAG_RTP_PAYLOAD:
            return []
        else:
            pkts = p.packetize(e.data, ts)
        if pkts:
            self.next_seq = (_SEQ.unpack_from(pkts[-1], 2)[0] + 1) & 0xFFFF
            self.packet_count += len(pkts)
            self.octet_count += sum(len(p) for p in pkts) - 12 * len(pkts)
            self.last_at = time.time()
        return pkts

    def sender_report(self, now: float) -> bytes:
        """RTCP SR mapping `now` to this track's RTP clock (RFC 3550 6.4.1)."""
        ts = self.last_ts + int((now - self.last_at) * self.track.clock_rate)
        return bytes(SenderReport(self.ssrc, unix_to_ntp(now), ts, self.packet_count, self.octet_count))


Batch = list[tuple[int, bool, bytes]]  # (track, starts a keyframe, packet)


class RtpFanout:
    def __init__(self, view: StreamView) -> None:
        self.view = view
        self.consumers: list[Consumer] = []  # for counts/kicks (the RTSP connections)
        self.players: list[RtpPlayer] = []
        self.tracks = [TrackOut(t) for t in view.desc.tracks]
        self.multicast: MulticastOut | None = None
        self._sr_timer: asyncio.TimerHandle | None = None

    def start_reports(self) -> None:
        if self._sr_timer is None:
            self._sr_timer = asyncio.get_running_loop().call_later(SR_INTERVAL, self._send_reports)

    def _send_reports(self) -> None:
        """Sender reports every SR_INTERVAL while anyone plays (players use
        them for A/V sync and to measure the clock)."""
        self._sr_timer = None
        live = [p for p in self.players if p.started]
        if not live:
            return
        now = time.time()
        reports = [(o.track.index, o.sender_report(now)) for o in self.tracks if o.packet_count]
        for p in live:
            p.send_rtcp(reports)
        multicast = self._multicast_live(live)
        if multicast is not None:
            multicast.send_rtcp(reports)
        self.start_reports()

    def _multicast_live(self, live: list[RtpPlayer]) -> MulticastOut | None:
        """The group, while one of its players plays (a SETUP alone, or a
        PAUSE, sends nothing onto the network)."""
        multicast = self.multicast
        if multicast is None or not any(p.plays_multicast for p in live):
            return None
        return multicast

    def multicast_left(self) -> None:
        """A multicast player left: the group ends with its last player."""
        if self.multicast is not None and not any(p.plays_multicast for p in self.players):
            self.multicast.close()
            self.multicast = None

    def on_desc(self, desc: StreamDesc) -> None:
        # Codec parameters travel in-band for RTSP players (the depacketised
        # access units keep their parameter sets); nothing to redo here.
        for out, t in zip(self.tracks, desc.tracks):
            out.track = t

    def packetize(self, entries: list[RingEntry]) -> Batch:
        batch: Batch = []
        video = next((o.track.index for o in self.tracks if o.track.kind == "video"), -1)
        for e in entries:
            if e.track >= len(self.tracks):
                continue
            pkts = self.tracks[e.track].packets(e)
            key = e.keyframe and (e.track == video or video < 0)
            for i, p in enumerate(pkts):
                batch.append((e.track, key and i == 0, p))
        return batch

    def feed(self, entries: list[RingEntry]) -> None:
        live = [p for p in self.players if p.started]
        if not live:
            return
        batch = self.packetize(entries)
        if not batch:
            return
        blobs: dict[tuple[int, ...], tuple[bytes, int]] = {}
        for p in live:
            if p.tcp_channels is not None:
                blob = blobs.get(p.tcp_channels)
                if blob is None:
                    blob = blobs[p.tcp_channels] = interleave(batch, p.tcp_channels)
                p.consumer.send(*blob)
            else:
                p.send_udp(batch)
        multicast = self._multicast_live(live)
        if multicast is not None:
            multicast.send(batch)

    def gop_batch(self) -> Batch:
        """The cached GOP, packetised with sequence numbers that end right
        where the live packets continue (so each track's numbering has no
        gap for the joining player)."""
        entries = self.view.gop()
        if not entries:
            return []
        temp = [TrackOut(o.track) for o in self.tracks]
        for tmp, o in zip(temp, self.tracks):
            tmp.ts_offset = o.ts_offset
            tmp.packetizer = make_packetizer(o.track, o.ssrc, 0)
        batch: Batch = []
        video = next((o.track.index for o in temp if o.track.kind == "video"), -1)
        for e in entries:
            if e.track >= len(temp):
                continue
            pkts = temp[e.track].packets(e)
            for i, p in enumerate(pkts):
                batch.append((e.track, e.keyframe and (e.track == video or video < 0) and i == 0, p))
        counts = [0] * len(self.tracks)
        for t, _k, _p in batch:
            counts[t] += 1
        seqs = [(o.next_seq - n) & 0xFFFF for o, n in zip(self.tracks, counts)]
        out: Batch = []
        for t, k, p in batch:
            b = bytearray(p)
            _SEQ.pack_into(b, 2, seqs[t])
            seqs[t] = (seqs[t] + 1) & 0xFFFF
            out.append((t, k, bytes(b)))
        return out


def interleave(batch: Batch, channels: tuple[int, ...]) -> tuple[bytes, int]:
    parts: list[bytes] = []
    pos = 0
    key_offset = -1
    for t, key, p in batch:
        ch = channels[t] if t < len(channels) else -1
        if ch < 0:
            continue
        if key and key_offset < 0:
            key_offset = pos
        head = frame_header(ch, len(p))
        parts.append(head)
        parts.append(p)
        pos += len(head) + len(p)
    return b"".join(parts), key_offset


class MulticastOut:
    """One group/port block per stream per front, shared by its multicast
    players: it sends only while one of them plays, and is closed (its ports
    given back) when the last of them leaves."""

    def __init__(self, group: str, port: int, ttl: int, tracks: int,
                 on_close: Callable[[list[int]], None] | None = None) -> None:
        self.group, self.port = group, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        self.ports = [port + 2 * i for i in range(tracks)]
        self._on_close = on_close
        self.closed = False

    def send(self, batch: Batch) -> None:
        for t, _k, p in batch:
            try:
                self.sock.sendto(p, (self.group, self.ports[t]))
            except OSError:
                pass

    def send_rtcp(self, reports: list[tuple[int, bytes]]) -> None:
        for t, r in reports:
            try:
                self.sock.sendto(r, (self.group, self.ports[t] + 1))
            except OSError:
                pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.sock.close()
        if self._on_close is not None:
            self._on_close(self.ports)


class RtpPorts:
    """Where this front's RTSP players send from: its slice of the RTP/UDP
    port range, and its blocks of multicast group ports (2 ports a track)."""

    def __init__(self, udp: PortPairPool, multicast: PortPairPool, group: str, ttl: int) -> None:
        self.udp = udp
        self.multicast = multicast
        self.group = group
        self.ttl = ttl
        self._mc_next = 0
        self._mc_used: set[int] = set()  # multicast pair starts of live blocks

    def udp_pair(self, client: str, replacing: bool = False) -> tuple[socket.socket, socket.socket]:
        """A port pair for a player at `client` (`replacing`: one it holds
        is given back right after), or 461 past the client's share of the
        front's slice (`hub.udp_ports`) or with the slice used up."""
        try:
            # An IPv6 player's pair is IPv6 (an IPv4 socket cannot send to it).
            return self.udp.bind_for(client, "::" if ":" in client else "0.0.0.0", replacing)
        except OSError as exc:
            raise UnsupportedTransport(str(exc)) from None

    def release_udp(self, client: str, port: int) -> None:
        self.udp.release_for(client, port)

    def multicast_out(self, tracks: int) -> MulticastOut:
        """A free block of group ports (a pair a track, inside this front's
        slice) for one stream's multicast players, or 461 when none is
        left: a block is never shared by two streams (a wrapping counter
        once gave a live stream's ports to the next one, mixing their RTP)."""
        ports = self.multicast.ports
        n = len(ports)
        for i in range(n):
            start = (self._mc_next + i) % n
            block = ports[start:start + tracks]
            if len(block) == tracks and block[-1] == block[0] + 2 * (tracks - 1) \
                    and not any(p in self._mc_used for p in block):
                self._mc_used.update(block)
                self._mc_next = (start + tracks) % n
                return MulticastOut(self.group, block[0], self.ttl, tracks, self._mc_release)
        raise UnsupportedTransport("no free multicast ports")

    def _mc_release(self, ports: list[int]) -> None:
        self._mc_used.difference_update(ports)


#: RTCP datagrams read from a UDP player per wake-up (the rest wait).
MAX_FEEDBACK_READS = 8
#: RTCP datagrams read from a UDP player's track at once, then a second (a
#: token bucket); past them its RTCP port is left unread for
#: `FEEDBACK_PAUSE` seconds and the kernel drops what comes meanwhile.
#: Players send a receiver report every few seconds; a flood of its port
#: (the player's own, or anyone's) was read 8 datagrams a wake-up for as
#: long as it lasted: 94% of the front's core at 185,000 datagrams a second
#: (`bench/udp_flood.py`); now ~0.
FEEDBACK_BURST = 32
FEEDBACK_RATE = 8.0
FEEDBACK_PAUSE = 1.0
#: Datagrams read and dropped at most when a track's RTCP port is locked to
#: the player's source (what the socket's buffer held from before).
STALE_FEEDBACK_READS = 1024


class FeedbackPort:
    """The RTCP port of one UDP track of a player, as its reports reach us.

    Only RTCP from a port the player declared (`client_port` on its host:
    RTCP's, or RTP's for clients that send both from one socket) counts:
    `on_heard()` is called for a wake-up that read some. Reads are held to
    a budget (FEEDBACK_BURST, then FEEDBACK_RATE a second); past it the port
    is left unread for FEEDBACK_PAUSE and the kernel keeps or drops the rest.
    Once a report came from the declared RTCP port the socket is connected
    to it (`lock`): the kernel then drops anything else before we read it,
    so a stranger's flood can neither cost the front nor spend the budget
    the player's reports need. Not on the RTP port's source: a client may
    punch its NAT from there and report from its RTCP port."""

    __slots__ = ("sock", "sources", "rtcp_source", "budget", "on_heard", "locked", "paused")

    def __init__(self, sock: socket.socket, host: str, declared: tuple[int, int], on_heard: Callable[[], None]) -> None:
        self.sock = sock
        self.sources = {(host, port) for port in declared}
        self.rtcp_source = (host, declared[1])
        self.budget = TokenBucket(FEEDBACK_BURST, FEEDBACK_RATE, time.monotonic())
        self.on_heard = on_heard
        self.locked = False
        self.paused: asyncio.TimerHandle | None = None
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock, sources = self.sock, self.sources
        heard = False
        now = time.monotonic()
        for _ in range(MAX_FEEDBACK_READS):
            try:
                _data, addr = sock.recvfrom(2048)
            except OSError:  # BlockingIOError: nothing queued; an ICMP error
                break
            source = (addr[0], addr[1])
            if source in sources:
                heard = True
                if not self.locked and source == self.rtcp_source and self._lock(addr):
                    break
            if not self.budget.take(now):
                self._pause()
                break
        if heard:
            self.on_heard()

    def _lock(self, addr: Any) -> bool:
        """Connect to the player's RTCP source; what was queued before is read
        and dropped once (at most what the socket's buffer holds), so its
        next report is not stuck behind a stranger's datagrams. Sends to the
        player go on (a connected UDP socket still sends where it is told)."""
        try:
            self.sock.connect(addr)
        except OSError:
            return False  # left unconnected: the source check still holds
        self.locked = True
        self.sources = {self.rtcp_source}
        for _ in range(STALE_FEEDBACK_READS):
            try:
                self.sock.recv(2048)
            except OSError:
                break
        return True

    def _pause(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.sock.fileno())
        self.paused = loop.call_later(FEEDBACK_PAUSE, self._resume)

    def _resume(self) -> None:
        self.paused = None
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        """Stop reading (the socket is the player's to close)."""
        if self.paused is not None:
            self.paused.cancel()
            self.paused = None
        asyncio.get_running_loop().remove_reader(self.sock.fileno())


class RtpPlayer:
    """One RTSP player session on this front: its transports per track.

    `on_feedback()` is called when RTCP from a port the player declared
    (`client_port`, on the player's host; RTCP's, or RTP's for clients that
    send both from one socket) reaches a UDP track's RTCP port: its
    receiver reports keep the RTSP session alive.
    Another port's (a neighbour behind the same NAT, any program on the
    player's host) do not: they kept a gone player's stream flowing."""

    def __init__(self, ports: RtpPorts, view: StreamView, transport: asyncio.Transport,
                 peer_host: str, on_feedback: Callable[[], None] | None = None) -> None:
        self.ports = ports
        self.on_feedback = on_feedback
        self.view = view
        self.transport = transport
        self.peer_host = peer_host
        self.fanout: RtpFanout = view.fanout("rtp", RtpFanout)
        self.started = False
        self.tcp_channels: tuple[int, ...] | None = None
        self._tcp: dict[int, int] = {}
        self._tcp_rtcp: dict[int, int] = {}  # the RTCP channel each track's SETUP declared
        self._udp: dict[int, tuple[socket.socket, socket.socket, tuple[str, int]]] = {}
        self._rtcp_dest: dict[int, tuple[str, int]] = {}  # the declared RTCP address per UDP track
        self._feedback: dict[int, FeedbackPort] = {}  # by the RTCP socket's fd, while on_feedback is set
        self._multicast: set[int] = set()
        self._gop: Batch = []
        self._joined = False  # the cached GOP went out (one burst per session)
        self.consumer = Consumer(transport, "RTP", "net=rtsp-tcp", on_close=self._consumer_closed)
        cap_send_buffer(transport)
        self.fanout.consumers.append(self.consumer)
        self.fanout.players.append(self)

    @property
    def plays_multicast(self) -> bool:
        """Set up to receive a track from the stream's group."""
        return bool(self._multicast)

    def setup(self, track: int, spec: TransportSpec) -> TransportSpec:
        if spec.is_tcp:
            ch = spec.interleaved or (2 * track, 2 * track + 1)
            self._tcp[track] = ch[0]
            self._tcp_rtcp[track] = ch[1]
            n = len(self.view.desc.tracks)
            self.tcp_channels = tuple(self._tcp.get(i, -1) for i in range(n))
            self.consumer.extra = "net=rtsp-tcp"
            return TransportSpec(protocol="RTP/AVP/TCP", delivery="unicast", interleaved=ch)
        if spec.is_multicast:
            fan = self.fanout
            if fan.multicast is None:
                fan.multicast = self.ports.multicast_out(len(self.view.desc.tracks))
            mc = fan.multicast
            self._multicast.add(track)
            self.consumer.extra = "net=rtsp-multicast"
            return TransportSpec(protocol="RTP/AVP", delivery="multicast", destination=mc.group,
                                 port=(mc.ports[track], mc.ports[track] + 1),
                                 ttl=self.ports.ttl)
        if not spec.client_port:
            raise UnsupportedTransport("UDP needs client_port")
        rtp, rtcp = self.ports.udp_pair(self.peer_host, replacing=track in self._udp)
        old = self._udp.pop(track, None)
        if old is not None:
            self._release(*old)
        self._udp[track] = (rtp, rtcp, (self.peer_host, spec.client_port[0]))
        self._rtcp_dest[track] = (self.peer_host, spec.client_port[1])
        if self.on_feedback is not None:
            self._feedback[rtcp.fileno()] = FeedbackPort(rtcp, self.peer_host, spec.client_port, self.on_feedback)
        self.consumer.extra = "net=rtsp-udp"
        port = rtp.getsockname()[1]
        return TransportSpec(protocol="RTP/AVP", delivery="unicast", client_port=spec.client_port,
                             server_port=(port, port + 1))

    def rtp_info(self, base_url: str) -> str:
        """RTP-Info for PLAY; also fixes the GOP this player starts with:
        the cached one at its first PLAY only. A PLAY after PAUSE resumes
        live (over TCP at the next keyframe): re-sent, the GOP was megabytes
        of packets (over UDP, with no back-pressure) per PAUSE/PLAY pair."""
        self._gop = self.fanout.gop_batch() if not self._joined else []
        first: dict[int, tuple[int, int]] = {}
        for t, _k, p in self._gop:
            if t not in first:
                first[t] = (_SEQ.unpack_from(p, 2)[0], struct.unpack_from(">I", p, 4)[0])
        parts = []
        for o in self.fanout.tracks:
            i = o.track.index
            if i not in self._tcp and i not in self._udp and i not in self._multicast:
                continue
            seq, ts = first.get(i, (o.next_seq, o.last_ts))
            parts.append(f"url={base_url}/trackID={i};seq={seq};rtptime={ts}")
        return ",".join(parts)

    def start(self) -> None:
        if self.started:
            return
        if self.tcp_channels is not None:
            blob, _k = interleave(self._gop, self.tcp_channels)
            self.consumer.write_direct(blob)
            # Without a cached GOP, start at the next keyframe.
            self.consumer.skipping = not self._gop
        elif self._udp:
            self.send_udp(self._gop)
        self._gop = []
        self.started = self._joined = True
        self.fanout.start_reports()

    def send_rtcp(self, reports: list[tuple[int, bytes]]) -> None:
        if self.tcp_channels is not None:
            parts: list[bytes] = []
            for t, r in reports:
                ch = self._tcp_rtcp.get(t)  # as declared: RTP's + 1 may be 256
                if ch is not None:
                    parts += (frame_header(ch, len(r)), r)
            if parts:
                self.consumer.write_direct(b"".join(parts))
            return
        for t, r in reports:
            dest = self._udp.get(t)
            if dest is not None:
                try:
                    dest[1].sendto(r, self._rtcp_dest[t])
                except OSError:
                    pass

    def pause(self) -> None:
        self.started = False

    def send_udp(self, batch: Batch) -> None:
        udp = self._udp
        for t, _k, p in batch:
            dest = udp.get(t)
            if dest is not None:
                try:
                    dest[0].sendto(p, dest[2])
                    self.consumer.outbytes += len(p)
                except OSError:
                    pass

    def _release(self, rtp: socket.socket, rtcp: socket.socket, _dest: object) -> None:
        port = self._feedback.pop(rtcp.fileno(), None)
        if port is not None:
            port.close()
        self.ports.release_udp(self.peer_host, rtp.getsockname()[1])
        rtp.close()
        rtcp.close()

    def _consumer_closed(self, c: Consumer) -> None:
        self.close()

    def close(self) -> None:
        fan = self.fanout
        if self in fan.players:
            fan.players.remove(self)
        for rtp, rtcp, dest in self._udp.values():
            self._release(rtp, rtcp, dest)
        self._udp.clear()
        if not self.consumer.closed:
            self.consumer.closed = True
        if self._multicast:
            self._multicast.clear()
            fan.multicast_left()
        self.view.drop_consumer(self.consumer)
