"""Per-track ingest: RTP packets or whole access units → the stream's ring.

One `TrackIngest` per published track, made by the source's
`hub.shard.ingest.IngestSession` when it goes live and fed by whichever
transport carries the track: RTP from interleaved `$` frames or a UDP
socket (`push_rtp`), or access units that arrive whole, such as RTMP's
(`push_au`); both ways give the same ring entries. It is the hot path,
so everything that can be decided once (which depacketiser, which flags,
whether audio counts as keyframes, the time base) is decided in
`__init__` or on the first packet, and a packet costs one header unpack
(no packet object, no copy of its payload when it comes as a view that
stays valid: `push_rtp_view`), one depacketiser call, and per finished
access unit one join of its pieces and one ring write.

Timestamps follow the contract of `hub.media.stream_desc`: the extended RTP
timestamp (or the source's unit timestamp) minus this track's first one,
plus how long after the stream's start that first packet arrived (in the
track's clock), so the tracks of a stream share one time line without
waiting for RTCP.

A source whose time line jumps (back by more than `MAX_STEP_BACK`, or ahead
by more than `MAX_LEAP`: a camera's encoder restarted, GStreamer's RTSP
server restarting a shared media's time line when another client plays it)
is followed without the jump: the track's time line is moved so the unit
after it lands one step after the unit before it (the track's last step
between units), or as long after it as the clock says passed between
them, whichever is more. The track keeps its place against the clock, so
the other tracks' and the sender reports' too (landing it where it
arrived moved it by however far it ran ahead of its arrival: an RTSP
player re-synced on the next report and saw a 19 ms step back). Before,
the jump went through: a pulled camera's players saw audio go back ~6.9 s
and video frozen at one DTS for as long.

Nothing a publisher sends is raised from here: a packet that does not parse
is dropped and counted (`stats`).
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import ProtocolError
from ..media.aac import AacConfig
from ..media.dts import DtsEstimator
from ..media.rtcp import SenderReport, parse_compound
from ..media.rtp_aac import AacDepacketizer
from ..media.rtp_h264 import H264Depacketizer
from ..media.rtp_h265 import H265Depacketizer
from ..media.rtp_nal import RtpNalDepacketizer
from ..media.sdp import aac_params, parse_fmtp
from ..media.seqnum import TimestampUnwrapper
from ..media.stream_desc import AUDIO_AAC, FLAG_MARKER, FLAG_RTP_PAYLOAD, TrackDesc
from .sdp_tracks import with_aac_config, with_h264_params, with_h265_params
from .stream import Stream

log = logging.getLogger("hub.shard.rtp_in")

_RTP = struct.Struct(">BBHI")  # flags, marker + payload type, sequence number, timestamp
_EXT = struct.Struct(">HH")

__all__ = ["IngestStats", "PARAMS_MIN_GAP", "TrackIngest", "make_depacketizer"]

#: A track's description changes at most this often (seconds). Each change
#: costs the shard a new SDP and a log line, and every front reading the
#: stream a DESCRIBE and new headers to its players: a publisher changing
#: its PPS in every packet (or an RTMP one its sequence header in every
#: message) did that thousands of times a second. A change within the gap
#: is taken up by the track's first packet (or unit) after it.
PARAMS_MIN_GAP = 1.0
#: Seconds a track's timestamps may go back (B-frames reorder by a few
#: frames) or leap ahead (lost frames, a source that paused) from one unit
#: to the next; beyond, the source's time line jumped (module docstring).
#: Video may go back by up to REORDER_SPAN frames, however long they are
#: (B-frames at a low frame rate).
MAX_STEP_BACK = 1.0
MAX_LEAP = 10.0
REORDER_SPAN = 16


@dataclass(slots=True)
class IngestStats:
    packets: int = 0  # RTP packets accepted
    bad_rtp: int = 0  # did not parse: dropped
    foreign_pt: int = 0  # payload type other than the track's: dropped
    entries: int = 0  # ring entries written
    rtcp: int = 0  # RTCP packets parsed
    bad_rtcp: int = 0  # RTCP that did not parse: dropped
    param_updates: int = 0  # in-band parameter sets that changed the track
    units_in: int = 0  # access units pushed whole (push_au)
    jumps: int = 0  # the source's time line jumped: followed without the jump

    def add(self, other: IngestStats) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def make_depacketizer(desc: TrackDesc) -> H264Depacketizer | H265Depacketizer | AacDepacketizer | None:
    """The depacketiser for `desc`'s codec, None for pass-through codecs.

    ProtocolError/ValueError when the fmtp cannot drive one (AAC field
    widths); the caller then passes packets through.
    """
    if desc.codec == "H264":
        return H264Depacketizer()
    if desc.codec == "H265":
        return H265Depacketizer()
    if desc.codec == AUDIO_AAC:
        p = aac_params(parse_fmtp(desc.fmtp))
        frame_length = 1024
        if desc.asc:
            try:
                frame_length = AacConfig.parse(desc.asc).frame_length
            except ProtocolError:
                pass
        return AacDepacketizer(size_length=p.sizelength, index_length=p.indexlength,
                               index_delta_length=p.indexdeltalength, frame_length=frame_length)
    return None


class TrackIngest:
    """RTP/RTCP of one track in, ring entries out.

    `on_params(index, new_desc)` is called when in-band parameter sets
    change the track's description (the session then re-describes the
    stream); it gets a new TrackDesc, the old one is never mutated.
    `started` is the stream's start on `clock`.
    """

    __slots__ = ("stream", "index", "desc", "pt", "stats", "last_sr", "last_sr_at", "_depack",
                 "_unwrap", "_base", "_key_all", "_on_params", "_clock", "_started",
                 "_nal_depack", "_is_video", "_dts", "_dts_of", "_unit_sink", "_described_at",
                 "_pending_asc", "_last_pts", "_last_at", "_last_step", "_step_back", "_leap")

    def __init__(self, stream: Stream, index: int, desc: TrackDesc, *, audio_only: bool,
                 on_params: Callable[[int, TrackDesc], None] | None = None,
                 started: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.index = index
        self.desc = desc
        self.pt = desc.payload_type
        self.stats = IngestStats()
        self.last_sr: SenderReport | None = None  # for a later A/V sync by NTP
        self.last_sr_at = 0.0
        try:
            self._depack = make_depacketizer(desc)
        except (ProtocolError, ValueError) as exc:
            log.warning("%s: track %d (%s) passed through: %s", stream.path, index, desc.codec, exc)
            self._depack = None
        self._unwrap = TimestampUnwrapper()
        self._base: int | None = None  # extended ts that maps to pts 0
        self._last_pts: int | None = None  # the last unit's time, for jumps of the time line
        self._last_at = 0.0  # when it came (clock)
        self._last_step = 0  # the last step forward between two units
        self._step_back = round(MAX_STEP_BACK * desc.clock_rate)
        self._leap = round(MAX_LEAP * desc.clock_rate)
        # Audio of an audio-only stream: every frame is a start point.
        self._key_all = audio_only and desc.kind != "video"
        self._is_video = desc.kind == "video"
        fps = desc.framerate if desc.kind == "video" else 0.0
        self._dts = DtsEstimator(round(desc.clock_rate / fps) if fps else None) \
            if desc.codec in ("H264", "H265") else None
        self._dts_of = self._dts.dts if self._dts is not None else None
        self._on_params = on_params
        self._clock = clock
        self._started = stream.started if started is None else started
        self._unit_sink = self._unit  # made once, not a bound method per packet
        self._described_at = float("-inf")  # when the description last changed (PARAMS_MIN_GAP)
        self._pending_asc: bytes | None = None  # an AAC config waiting for the gap's end
        # The depacketiser whose in-band parameter sets we follow, if any.
        self._nal_depack = (self._depack if on_params is not None and isinstance(
            self._depack, RtpNalDepacketizer) else None)
        stream.ingests.append(self)  # the stream sums their losses for the metrics

    def losses(self) -> tuple[int, int]:
        """(RTP packets lost, RTP packets dropped) so far: sequence gaps; and
        packets that did not parse, had another payload type, came late or
        could not be depacketised."""
        st = self.stats
        dropped = st.bad_rtp + st.foreign_pt
        depack = self._depack
        if depack is None:
            return 0, dropped
        ds = depack.stats
        return ds.lost, dropped + ds.late + ds.malformed + ds.unsupported

    # -- RTP ------------------------------------------------------------------
    def push_rtp(self, data: bytes | bytearray | memoryview) -> None:
        """One RTP packet as received, in a buffer that may be reused after
        the call (a UDP socket's): copied once, then as `push_rtp_view`."""
        self.push_rtp_view(data if isinstance(data, bytes) else bytes(data))

    def push_rtp_view(self, data: bytes | bytearray | memoryview) -> None:
        """One RTP packet in bytes, or a view of bytes, that stay as they are
        (an interleaved frame of a TCP read): its payload is not copied, the
        depacketiser keeps views of it until its unit is written. Never
        raises for what the peer sent: what does not parse is counted.

        The header is read here (RFC 3550 5.1: version, CSRCs, extension,
        padding checked as `hub.media.rtp.RtpPacket.parse` does) rather than
        through an RtpPacket: this runs for every packet of every publisher."""
        n = len(data)
        if n < 12:
            self.stats.bad_rtp += 1
            return
        b0, b1, seq, ts = _RTP.unpack_from(data)
        pos = 12 + ((b0 & 0x0F) << 2)
        if b0 & 0xF0 != 0x80:  # version 2, no padding, no extension: the usual case
            if b0 >> 6 != 2:
                self.stats.bad_rtp += 1
                return
            if b0 & 0x10:
                if pos + 4 > n:
                    self.stats.bad_rtp += 1
                    return
                pos += 4 + (_EXT.unpack_from(data, pos)[1] << 2)
            if b0 & 0x20:
                pad = data[n - 1]
                if pad == 0 or pos + pad > n:
                    self.stats.bad_rtp += 1
                    return
                n -= pad
        if pos > n:
            self.stats.bad_rtp += 1
            return
        if b1 & 0x7F != self.pt:
            self.stats.foreign_pt += 1
            return
        self.stats.packets += 1
        if self._base is None:
            self._set_base(ts)
        depack = self._depack
        payload = data[pos:n] if isinstance(data, memoryview) else memoryview(data)[pos:n]
        if depack is None:
            self._pass_through(ts, bool(b1 & 0x80), payload)
            return
        depack.feed(seq, ts, bool(b1 & 0x80), payload, self._unit_sink)
        nal = self._nal_depack
        if nal is not None and nal.params_changed:
            self._check_params(nal)

    def _unit(self, pts: int, data: bytes | memoryview, keyframe: bool) -> None:
        """A unit the depacketiser finished: into the ring (its one copy)."""
        base = self._base
        assert base is not None
        pts = self._follow(pts - base)
        # RTP has no DTS: derive one for video (B-frames), audio is in order.
        dts_of = self._dts_of
        dts = dts_of(pts) if dts_of is not None else pts
        # Only video decides start points; an audio depacketiser's own
        # keyframe flag (every AAC frame) must not move the GOP start.
        self.stream.write(self.index, data, pts, dts, self._key_all or (self._is_video and keyframe))
        self.stats.entries += 1

    def _set_base(self, first_ts: int) -> None:
        """Map the first packet's timestamp to its arrival offset.

        The depacketisers and our pass-through unwrapper both take the first
        timestamp they see as is, so subtracting `base` from their extended
        values counts from this packet.
        """
        offset = max(0.0, self._clock() - self._started)
        self._base = first_ts - round(offset * self.desc.clock_rate)

    def _follow(self, t: int) -> int:
        """This unit's time (in decode order) on the track's time line: as
        is, or moved past a jump of the source's (`_jumped`)."""
        now = self._clock()
        last = self._last_pts
        if last is not None:
            if t < last - self._step_back or t > last + self._leap:
                t = self._jumped(t, last, now)
            elif t > last:
                self._last_step = t - last
        self._last_pts = t
        self._last_at = now
        return t

    def _jumped(self, pts: int, last: int, now: float) -> int:
        """The source's time line jumped between the last unit (at `last`)
        and this one (at `pts`): move the track's time line so this unit
        lands one step after `last`, or as long after it as the clock says
        passed, whichever is more; its new timestamp. Later units follow
        from it (`_base` moved with it). A video step back within
        REORDER_SPAN frames is no jump: `pts` as is."""
        dts = self._dts
        if pts < last and dts is not None and dts.frame_ticks is not None \
                and last - pts <= REORDER_SPAN * dts.frame_ticks:
            return pts  # B-frames at a low frame rate
        rate = self.desc.clock_rate
        passed = round(max(0.0, now - self._last_at) * rate)
        moved = last + max(1, self._last_step, passed)
        self.stats.jumps += 1
        if self.stats.jumps == 1:
            log.info("%s: track %d: the source's time line jumped by %+.3f s; followed without the jump",
                     self.stream.path, self.index, (pts - last) / rate)
        assert self._base is not None
        self._base += pts - moved
        return moved

    def _pass_through(self, ts: int, marker: bool, payload: memoryview) -> None:
        base = self._base
        assert base is not None
        pts = self._follow(self._unwrap.extend(ts) - base)
        flags = FLAG_RTP_PAYLOAD | FLAG_MARKER if marker else FLAG_RTP_PAYLOAD
        self.stream.write(self.index, payload, pts, pts, self._key_all, flags)
        self.stats.entries += 1

    def _check_params(self, depack: RtpNalDepacketizer) -> None:
        """In-band parameter sets that differ from the description → new desc.

        Runs only when the depacketiser flagged a parameter set different
        from the last one it saw, so the common case costs one bool test.
        Within PARAMS_MIN_GAP of the last change the flag stays, for a
        later packet to take the parameter sets as they are then.
        """
        now = self._clock()
        if now - self._described_at < PARAMS_MIN_GAP:
            return
        depack.params_changed = False
        vps = depack.params.get("vps") or b""
        sps = depack.sps or b""
        pps = depack.pps or b""
        desc = self.desc
        if not sps or not pps:
            return
        if desc.codec == "H264":
            if sps == desc.sps and pps == desc.pps:
                return
            new = with_h264_params(desc, sps, pps)
        else:
            if not vps or (vps == desc.vps and sps == desc.sps and pps == desc.pps):
                return
            new = with_h265_params(desc, vps, sps, pps)
        self._described_at = now
        self.desc = new
        self.stats.param_updates += 1
        assert self._on_params is not None
        self._on_params(self.index, new)

    # -- whole access units -------------------------------------------------
    def push_au(self, data: bytes | bytearray | memoryview, pts: int, dts: int | None = None, *,
                length_size: int = 4) -> None:
        """One access unit that arrived whole, timestamps in the track's clock.

        Video is length-prefixed NAL units (`length_size` bytes each, as the
        decoder configuration record says), AAC one raw frame, any other
        codec what its RTP payload would be. The entry written is the one
        the RTP path writes for the same unit; a `dts` from the source (RTMP
        has one) is kept, without one it is derived as for RTP. A unit of
        nothing but parameter sets is not written: they lead the next one.
        """
        self.stats.units_in += 1
        if self._pending_asc is not None and self._clock() - self._described_at >= PARAMS_MIN_GAP:
            self.set_audio_config(self._pending_asc)
        if self._base is None:
            self._set_base(pts if dts is None else dts)
        base = self._base
        assert base is not None
        depack = self._depack
        keyframe = self._key_all
        flags = 0
        if isinstance(depack, RtpNalDepacketizer):
            au = depack.push_avcc(data, pts, length_size=length_size)
            nal = self._nal_depack
            if nal is not None and nal.params_changed:
                self._check_params(nal)
            if au is None:
                return
            data = au.data
            keyframe = keyframe or (self._is_video and au.keyframe)
        elif depack is None:
            flags = FLAG_RTP_PAYLOAD | FLAG_MARKER
        pts -= base
        if dts is not None:
            dts -= base
        at = pts if dts is None else dts  # in decode order: what must not jump
        moved = self._follow(at) - at
        if moved:
            pts += moved
            if dts is not None:
                dts += moved
        if dts is None:
            dts = self._dts.dts(pts) if self._dts is not None else pts
        if isinstance(data, bytearray):
            data = memoryview(data)
        self.stream.write(self.index, data, pts, dts, keyframe, flags)
        self.stats.entries += 1

    def set_params(self, nals: Iterable[bytes | bytearray | memoryview]) -> None:
        """H.264/H.265 parameter sets out of band (RTMP's sequence header):
        a change re-describes the stream as in-band ones do."""
        nal = self._nal_depack
        if nal is None:
            return
        nal.set_params(nals)
        if nal.params_changed:
            self._check_params(nal)

    def set_audio_config(self, asc: bytes) -> None:
        """A new AAC AudioSpecificConfig (RTMP's sequence header); ProtocolError
        when it does not parse. Within PARAMS_MIN_GAP of the last change it
        waits for the track's first unit after the gap."""
        self._pending_asc = None
        if self.desc.codec != AUDIO_AAC or asc == self.desc.asc:
            return
        now = self._clock()
        if now - self._described_at < PARAMS_MIN_GAP:
            AacConfig.parse(asc)  # refused now, as at once
            self._pending_asc = bytes(asc)
            return
        new = with_aac_config(self.desc, asc)
        self._described_at = now
        self.desc = new
        self.stats.param_updates += 1
        if self._on_params is not None:
            self._on_params(self.index, new)

    # -- RTCP -----------------------------------------------------------------
    def push_rtcp(self, data: bytes | bytearray | memoryview) -> None:
        """A compound RTCP packet: keep the last SR; garbage is counted."""
        try:
            packets = parse_compound(data)
        except ProtocolError:
            self.stats.bad_rtcp += 1
            return
        self.stats.rtcp += 1
        for p in packets:
            if isinstance(p, SenderReport):
                self.last_sr = p
                self.last_sr_at = self._clock()

    def push(self, data: bytes | bytearray | memoryview) -> None:
        """A packet from a transport that muxes RTP and RTCP (RFC 5761)."""
        if len(data) >= 2 and 192 <= data[1] <= 223:
            self.push_rtcp(data)
        else:
            self.push_rtp(data)
