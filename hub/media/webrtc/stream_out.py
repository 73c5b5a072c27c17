"""RTP for the WebRTC players of one stream in one front, made once.

:class:`WebRtcStreamOut` turns ring entries (access units) into RTP packets
with the packetisers RTSP uses, one per track, once per stream: every peer
gets the same packets (same SSRC, sequence numbers and timestamps) and only
protects them with its own SRTP keys. Keyframes that lack in-band parameter
sets get the description's SPS/PPS (and VPS) in front, because a browser
cannot learn them from the SDP. The last packets of each track stay in a
:class:`RetransmitBuffer` to answer NACKs.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from typing import Iterable

from hub.media.access_unit import avcc_join, avcc_split
from hub.media.rtcp import SenderReport, unix_to_ntp
from hub.media.rtp_h264 import H264Packetizer
from hub.media.rtp_h265 import H265Packetizer
from hub.media.stream_desc import StreamDesc, TrackDesc

from .codec_match import WEBRTC_AUDIO

__all__ = ["RetransmitBuffer", "WebRtcTrackOut", "WebRtcStreamOut", "ReplayUnit", "RETRANSMIT_PACKETS", "MTU"]

#: Packets kept per track for NACKs: ~1 s of a 4 Mbit/s stream.
RETRANSMIT_PACKETS = 512
#: RTP packet size (header included) that fits SRTP, UDP, IPv6 and a VPN.
MTU = 1200
_HDR = struct.Struct(">BBHII")
_SEQ = struct.Struct(">H")


class RetransmitBuffer:
    """The last ``size`` packets of a track, by sequence number."""

    __slots__ = ("_slots", "_mask")

    def __init__(self, size: int = RETRANSMIT_PACKETS) -> None:
        if size & (size - 1):
            raise ValueError("size must be a power of two")
        self._slots: list[bytes | None] = [None] * size
        self._mask = size - 1

    def add(self, packets: list[bytes]) -> None:
        slots, mask = self._slots, self._mask
        for p in packets:
            slots[_SEQ.unpack_from(p, 2)[0] & mask] = p

    def lookup(self, seq: int) -> bytes | None:
        p = self._slots[seq & self._mask]
        if p is None or _SEQ.unpack_from(p, 2)[0] != seq & 0xFFFF:
            return None
        return p


#: (track, data, pts, keyframe, marker) of one ring entry, for :meth:`WebRtcStreamOut.replay`.
ReplayUnit = tuple[int, bytes, int, bool, bool]


@dataclass(slots=True)
class _Counters:
    packets: int = 0
    octets: int = 0
    last_ts: int = 0
    last_at: float = 0.0


class WebRtcTrackOut:
    """One track's shared packetiser, SSRC and retransmission buffer."""

    def __init__(self, track: TrackDesc, payload_type: int, ssrc: int, seq: int, ts_offset: int) -> None:
        self.track = track
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.seq = seq
        self.ts_offset = ts_offset
        self.history = RetransmitBuffer()
        self.counters = _Counters()
        self._video: H264Packetizer | H265Packetizer | None = None
        if track.codec == "H264":
            self._video = H264Packetizer(payload_type, ssrc, MTU, start_seq=seq)
        elif track.codec == "H265":
            self._video = H265Packetizer(payload_type, ssrc, MTU, start_seq=seq)

    @property
    def next_seq(self) -> int:
        """Sequence number of the next live packet."""
        return self._video.seq if self._video is not None else self.seq

    def set_payload_type(self, pt: int) -> None:
        self.payload_type = pt
        if self._video is not None:
            self._video.pt = pt

    def _with_params(self, data: bytes) -> bytes:
        t = self.track
        if t.codec == "H264":
            params = [p for p in (t.sps, t.pps) if p]
            present = {n[0] & 0x1F for n in avcc_split(data) if n}
            if len(params) == 2 and 7 not in present:
                return avcc_join(params) + data
        else:
            params = [p for p in (t.vps, t.sps, t.pps) if p]
            present = {(n[0] >> 1) & 0x3F for n in avcc_split(data) if n}
            if len(params) == 3 and 33 not in present:
                return avcc_join(params) + data
        return data

    def packetize(self, data: bytes, pts: int, keyframe: bool, marker: bool, now: float) -> list[bytes]:
        ts = (pts + self.ts_offset) & 0xFFFFFFFF
        video = self._video
        if video is not None:
            pkts = video.packetize(self._with_params(data) if keyframe else data, ts)
        else:
            pkts = [b"".join((_HDR.pack(0x80, (0x80 if marker else 0) | self.payload_type,
                                        self.seq, ts, self.ssrc), data))]
            self.seq = (self.seq + 1) & 0xFFFF
        if pkts:
            self.history.add(pkts)
            c = self.counters
            c.packets += len(pkts)
            c.octets += sum(len(p) for p in pkts) - 12 * len(pkts)
            c.last_ts = ts
            c.last_at = now
        return pkts

    def sender_report(self, now: float) -> bytes:
        """RTCP SR mapping wall time ``now`` to this track's RTP clock."""
        c = self.counters
        ts = (c.last_ts + int((now - c.last_at) * self.track.clock_rate)) & 0xFFFFFFFF
        return bytes(SenderReport(self.ssrc, unix_to_ntp(now), ts, c.packets, c.octets))


class WebRtcStreamOut:
    """Per stream per front: packetise once, keep history, make sender reports."""

    def __init__(self, desc: StreamDesc, payload_types: dict[int, int] | None = None,
                 rng: random.Random | None = None) -> None:
        rnd = rng or random.SystemRandom()
        self.tracks: dict[int, WebRtcTrackOut] = {}
        #: Access units packetised (one call per unit, whatever the peer count).
        self.units = 0
        for t in desc.tracks:
            if t.codec in ("H264", "H265") or t.codec.upper() in WEBRTC_AUDIO:
                pt = (payload_types or {}).get(t.index, t.payload_type)
                self.tracks[t.index] = WebRtcTrackOut(t, pt, rnd.getrandbits(32), rnd.getrandbits(16),
                                                      rnd.getrandbits(32))

    @property
    def ssrcs(self) -> dict[int, int]:
        return {i: t.ssrc for i, t in self.tracks.items()}

    def packetize(self, track: int, data: bytes, pts: int, *, keyframe: bool = False,
                  marker: bool = False, now: float = 0.0) -> list[bytes]:
        """One access unit (or, for audio, one RTP payload) to RTP; [] for a track
        WebRTC cannot carry (AAC)."""
        out = self.tracks.get(track)
        if out is None:
            return []
        self.units += 1
        return out.packetize(data, pts, keyframe, marker, now)

    def set_payload_type(self, track: int, pt: int) -> None:
        """Carry ``track`` with payload type ``pt`` from the next packet on (the
        number the stream's peers negotiated: they then need no rewrite)."""
        out = self.tracks.get(track)
        if out is not None:
            out.set_payload_type(pt)

    def replay(self, units: Iterable[ReplayUnit]) -> list[tuple[int, bool, list[bytes]]]:
        """Access units already sent live (a joining peer's GOP), packetised
        again apart from the live packets: same SSRC, timestamps and payload
        type, sequence numbers that end right before the next live packet of
        each track, so the joining peer sees one gapless numbering. Gives
        (track, keyframe, packets) per unit; nothing is kept for NACKs and
        nothing of the live state moves."""
        temp = {i: WebRtcTrackOut(o.track, o.payload_type, o.ssrc, 0, o.ts_offset) for i, o in self.tracks.items()}
        made: list[tuple[int, bool, list[bytes]]] = []
        counts = dict.fromkeys(temp, 0)
        for track, data, pts, keyframe, marker in units:
            o = temp.get(track)
            if o is None:
                continue
            pkts = o.packetize(data, pts, keyframe, marker, 0.0)
            counts[track] += len(pkts)
            made.append((track, keyframe, pkts))
        seqs = {i: (self.tracks[i].next_seq - n) & 0xFFFF for i, n in counts.items()}
        out: list[tuple[int, bool, list[bytes]]] = []
        for track, keyframe, pkts in made:
            renumbered: list[bytes] = []
            seq = seqs[track]
            for p in pkts:
                b = bytearray(p)
                _SEQ.pack_into(b, 2, seq)
                seq = (seq + 1) & 0xFFFF
                renumbered.append(bytes(b))
            seqs[track] = seq
            out.append((track, keyframe, renumbered))
        return out

    def lookup(self, track: int, seq: int) -> bytes | None:
        out = self.tracks.get(track)
        return None if out is None else out.history.lookup(seq)

    def sender_reports(self, now: float) -> list[bytes]:
        """An RTCP SR per track that has sent, each its own packet (protected per peer)."""
        return [t.sender_report(now) for t in self.tracks.values() if t.counters.packets]
