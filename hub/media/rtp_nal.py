"""What H.264 and H.265 over RTP share (RFC 6184, RFC 7798).

:class:`RtpNalDepacketizer` turns RTP packets into access units — sequence-gap
detection, frame boundaries (marker bit or a timestamp change; several
slices with one timestamp stay one frame), limits, parameter-set tracking —
and :class:`RtpNalPacketizer` splits access units into single-NAL and
fragmentation-unit packets. The codec modules (`rtp_h264`, `rtp_h265`) add
only their NAL header layout, aggregation and fragmentation headers.

The packetiser runs once per stream per front for RTSP players, so it builds
each packet with one ``struct.pack`` and one ``b"".join`` over memoryviews.

The depacketiser is the ingest's hot path (every packet of every
publisher): :meth:`RtpNalDepacketizer.feed` takes the packet's fields and a
view of its payload (no packet object), keeps views of the payloads (no
copy per packet, per fragment nor per NAL) with their AVCC length prefixes
as it goes, and joins them once per access unit; the ring then takes its
one copy. :meth:`~RtpNalDepacketizer.push` is the same for an
:class:`~hub.media.rtp.RtpPacket`.
"""

from __future__ import annotations

import struct
from typing import Callable, Iterable, Sized, cast

from hub.media.access_unit import AccessUnit, DepacketizerStats, avcc_split
from hub.media.rtp import RtpPacket
from hub.media.seqnum import TimestampUnwrapper

__all__ = ["MAX_AU_SIZE", "MAX_HELD_PER_AU", "MAX_NALS_PER_AU", "MAX_PARAM_SET", "MAX_PIECES_PER_AU",
           "RtpNalDepacketizer", "RtpNalPacketizer"]

#: Largest access unit accepted (bytes of NAL data); bigger ones are dropped.
MAX_AU_SIZE = 8 * 1024 * 1024
#: Most NAL units accepted in one access unit.
MAX_NALS_PER_AU = 512
#: Most pieces (NAL lengths, NALs, fragments) an access unit holds while it
#: is assembled: each is an object of ~200 bytes however little it carries
#: (an FU fragment one byte, H.265's none), so bytes alone do not bound
#: them. 8 MiB in fragments of 512 bytes and more.
MAX_PIECES_PER_AU = 16384
#: Most bytes of packets' buffers an access unit keeps alive while it is
#: assembled: its pieces are views, and a view keeps all of what it is a view
#: of (an RTSP/TCP read: up to 256 KiB, whatever else it carried), so a
#: one-byte NAL or fragment at the end of each read held every read. Past
#: it the unit so far is let go (dropped, counted as oversize). Twice
#: MAX_AU_SIZE: an 8 MiB unit's own reads fit.
MAX_HELD_PER_AU = 2 * MAX_AU_SIZE
#: Largest parameter set (VPS, SPS, PPS) followed. Real ones are tens of
#: bytes (a PPS with an FMO map a few KiB); each followed one goes into the
#: SDP, the stream's description on every front and its players' headers.
#: A bigger one stays in its access unit, not in the description.
MAX_PARAM_SET = 64 * 1024

_RTP = struct.Struct(">BBHII")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

#: Where `feed` hands each finished unit: (extended pts, its bytes, keyframe).
#: A view must be copied if kept (the ring's write copies it).
UnitSink = Callable[[int, "bytes | memoryview", bool], None]


class RtpNalDepacketizer:
    """Codec-neutral part of the H.264/H.265 depacketisers.

    Subclasses implement :meth:`_unpack` (split a payload into NALs, calling
    :meth:`_add_nal`, and run fragmentation with the ``_fu_*`` helpers),
    :meth:`_nal_type`, :meth:`_starts_picture` and :meth:`_keyframe`, and set
    ``_aud_type`` and ``_param_types`` (NAL type -> parameter-set name).

    After a sequence gap the frame that may have lost packets is dropped:
    the one in progress, or — when the gap falls between frames — the next
    one unless its first NAL visibly starts a picture (a parameter set, SEI,
    or a slice whose first-slice bit is set). Nothing here raises for a bad
    or lost packet; it is counted in :attr:`stats`.
    """

    _aud_type: int = -1
    _param_types: dict[int, str] = {}

    def __init__(self, *, max_au_size: int = MAX_AU_SIZE, max_nals: int = MAX_NALS_PER_AU,
                 max_pieces: int = MAX_PIECES_PER_AU, max_held: int = MAX_HELD_PER_AU,
                 on_params: Callable[[RtpNalDepacketizer], None] | None = None) -> None:
        self.stats = DepacketizerStats()
        self.max_au_size = max_au_size
        self.max_nals = max_nals
        self.max_pieces = max_pieces
        self.max_held = max_held
        self.on_params = on_params
        #: Set when an in-band parameter set differed from the last one seen;
        #: the owner clears it after updating the stream description.
        self.params_changed = False
        self.params: dict[str, bytes | None] = {name: None for name in self._param_types.values()}
        self._done_types: list[int] = []  # the NAL types of the unit last taken
        self._ts = TimestampUnwrapper()
        self._last_seq: int | None = None
        self._check_start = False
        self._au_ts: int | None = None
        #: The unit so far as AVCC pieces: each NAL's 4-byte length, then the
        #: NAL (a view of a payload, or a fragmented NAL's header and views).
        self._parts: list[bytes | memoryview] = []
        self._types: list[int] = []
        self._size = 0
        self._broken = False
        self._fu: list[bytes | memoryview] | None = None
        self._fu_size = 0
        #: What the unit's views may keep alive: the bytes of the distinct
        #: buffers its packets came in (counted when the buffer changes).
        self._held = 0
        self._held_base: object = None
        self._copied = 0  # leading pieces already copies (see _take)

    @property
    def sps(self) -> bytes | None:
        """The last sequence parameter set seen (both codecs have one)."""
        return self.params.get("sps")

    @property
    def pps(self) -> bytes | None:
        return self.params.get("pps")

    # -- codec hooks -------------------------------------------------------

    def _unpack(self, payload: memoryview) -> None:
        raise NotImplementedError

    def _nal_type(self, nal: bytes | bytearray | memoryview) -> int:
        raise NotImplementedError

    def _starts_picture(self, nal: bytes | memoryview) -> bool:
        raise NotImplementedError

    def _keyframe(self, types: list[int]) -> bool:
        raise NotImplementedError

    def _has_picture(self, types: list[int]) -> bool:
        raise NotImplementedError

    # -- driving -----------------------------------------------------------

    def push(self, pkt: RtpPacket) -> list[AccessUnit]:
        """Feed one packet; return the access units it completed (0, 1 or 2)."""
        out: list[AccessUnit] = []

        def collect(pts: int, data: bytes | memoryview, keyframe: bool) -> None:
            out.append(AccessUnit(pts, bytes(data), keyframe, tuple(self._done_types)))

        self.feed(pkt.sequence_number, pkt.timestamp, pkt.marker, memoryview(pkt.payload), collect)
        return out

    def feed(self, seq: int, ts: int, marker: bool, payload: memoryview, unit: UnitSink) -> None:
        """One packet as its fields; each unit it completes goes to `unit`.

        `payload` must stay as it is until its unit is done: views of it
        are kept (a view of an RTP packet's bytes, or of a TCP read's)."""
        stats = self.stats
        stats.packets += 1
        last = self._last_seq
        gap = False
        if last is not None:
            d = (seq - last) & 0xFFFF
            if d != 1:
                if d == 0 or d >= 0x8000:  # seq_diff <= 0: late or a duplicate
                    stats.late += 1
                    return
                stats.lost += d - 1
                self._drop_fu()
                gap = True
                if self._au_ts is not None:
                    self._broken = True
        self._last_seq = seq
        if self._au_ts is not None and ts != self._au_ts:
            self._finish(unit)
        if self._au_ts is None:
            self._au_ts = ts
            if gap:
                # Lost packets may have been this frame's first ones; the first
                # NAL (or fragment) seen decides (see _check_picture_start).
                self._broken = True
                self._check_start = True
        base = payload.obj
        if base is not self._held_base:  # a new read (TCP) or packet (UDP)
            self._held_base = base
            self._held += len(cast(Sized, base))
            if self._held > self.max_held:
                self._let_go()
        if payload:
            self._unpack(payload)
        else:
            stats.malformed += 1
        self._check_start = False
        if marker:
            if self._fu is not None:
                self._drop_fu()
                self._broken = True
                stats.malformed += 1
            self._finish(unit)

    def flush(self) -> list[AccessUnit]:
        """Emit the frame in progress (end of stream); a pending fragment is dropped.

        Without a marker nothing proves the frame complete (its last packets
        may be lost with no later packet to show the gap), so only call this
        when the stream really ended, never on a timer.
        """
        out: list[AccessUnit] = []

        def collect(pts: int, data: bytes | memoryview, keyframe: bool) -> None:
            out.append(AccessUnit(pts, bytes(data), keyframe, tuple(self._done_types)))

        if self._fu is not None:
            self._drop_fu()
            self._broken = True
        if self._au_ts is not None:
            self._finish(collect)
        return out

    def push_avcc(self, data: bytes | bytearray | memoryview, pts: int, *,
                  length_size: int = 4) -> AccessUnit | None:
        """A whole access unit as length-prefixed NAL units (FLV/RTMP, MP4).

        Gives exactly the unit the RTP path makes of the same NAL units: AUD
        dropped, parameter sets tracked (``params_changed``), 4-byte lengths,
        the same limits and keyframe rule; None when the unit is broken
        (counted) or carries no picture (its parameter sets and SEI then lead
        the next unit). ``length_size`` is the record's lengthSizeMinusOne + 1.
        Do not mix with :meth:`push` on one depacketiser.
        """
        if not 1 <= length_size <= 4:
            raise ValueError("NAL length size must be 1 to 4 bytes")
        # NALs may stay for the next unit: never keep views of a caller's buffer.
        mv = memoryview(data if isinstance(data, bytes) else bytes(data))
        end = len(mv)
        pos = 0
        while pos < end:
            if end - pos < length_size:
                self.stats.malformed += 1
                self._broken = True
                break
            size = int.from_bytes(mv[pos:pos + length_size], "big")
            pos += length_size
            if size > end - pos:
                self.stats.malformed += 1
                self._broken = True
                break
            self._add_nal(mv[pos:pos + size])
            pos += size
        return self._take_unit(pts)

    def set_params(self, nals: Iterable[bytes | bytearray | memoryview]) -> None:
        """Parameter sets that came out of band (a decoder configuration
        record): tracked as in-band ones are, but part of no access unit.
        NAL units of other types are ignored."""
        for nal in nals:
            if nal:
                name = self._param_types.get(self._nal_type(nal))
                if name is not None:
                    self._note_param(name, nal)

    # -- helpers for subclasses -------------------------------------------

    def _note_param(self, name: str, nal: bytes | bytearray | memoryview) -> bytes | None:
        """Follow a parameter set: its copy, or None when too big to follow."""
        if len(nal) > MAX_PARAM_SET:
            self.stats.malformed += 1
            return None
        data = bytes(nal)
        if self.params.get(name) != data:
            self.params[name] = data
            self.params_changed = True
            if self.on_params is not None:
                self.on_params(self)
        return data


    def _add_nal(self, nal: bytes | memoryview) -> None:
        if not nal:
            self.stats.malformed += 1
            return
        if self._check_start:
            self._check_picture_start(nal)
        t = self._nal_type(nal)
        if t == self._aud_type:
            return
        name = self._param_types.get(t)
        if name is not None:
            noted = self._note_param(name, nal)
            if noted is not None:
                nal = noted
        if self._broken:
            return
        size = len(nal)
        self._size += size
        if self._size > self.max_au_size or len(self._types) >= self.max_nals:
            self.stats.oversize += 1
            self._broken = True
            return
        self._parts += (_U32.pack(size), nal)
        self._types.append(t)

    def _add_fragmented(self, fu: list[bytes | memoryview], size: int) -> None:
        """A NAL whose fragments all came: its pieces go in as they are."""
        t = self._nal_type(fu[0])
        if t == self._aud_type or t in self._param_types:
            self._add_nal(b"".join(fu))  # rare: tracked or dropped as a whole
            return
        if self._broken:
            return
        self._size += size
        if self._size > self.max_au_size or len(self._types) >= self.max_nals:
            self.stats.oversize += 1
            self._broken = True
            return
        self._parts.append(_U32.pack(size))
        self._parts += fu
        self._types.append(t)

    def _check_picture_start(self, head: bytes | memoryview) -> None:
        self._check_start = False
        if self._starts_picture(head):
            self._broken = False

    def _unpack_aggregate(self, payload: memoryview, pos: int, min_size: int) -> None:
        """STAP-A / AP: 16-bit size, NAL unit, repeated from ``pos``."""
        end = len(payload)
        while pos < end:
            if end - pos < 2:
                self.stats.malformed += 1
                self._broken = True
                return
            size = _U16.unpack_from(payload, pos)[0]
            pos += 2
            if size < min_size or size > end - pos:
                self.stats.malformed += 1
                self._broken = True
                return
            self._add_nal(payload[pos:pos + size])
            pos += size

    def _fu_start(self, header: bytes, data: memoryview, end: bool) -> None:
        if end:  # start and end in one fragment: a complete NAL
            self._add_nal(header + data)
            return
        if self._check_start:
            self._check_picture_start(header + bytes(data[:1]))
        if self._fu is not None:
            self.stats.malformed += 1  # a start without the previous end
            self._broken = True
        self._fu = [header, data]
        self._fu_size = len(header) + len(data)

    def _fu_continue(self, data: memoryview, end: bool) -> None:
        self._check_start = False
        fu = self._fu
        if fu is None:
            # The start was lost (or never sent): the frame is incomplete.
            self._broken = True
            return
        fu.append(data)
        self._fu_size += len(data)
        if self._fu_size > self.max_au_size or len(fu) + len(self._parts) > self.max_pieces:
            self.stats.oversize += 1
            self._drop_fu()
            self._broken = True
            return
        if end:
            self._fu = None
            self._add_fragmented(fu, self._fu_size)

    def _drop_fu(self) -> None:
        self._fu = None
        self._fu_size = 0

    def _let_go(self) -> None:
        """The unit so far keeps too much alive: drop its pieces now (the
        rest of it is dropped as it comes, the unit counted as oversize)."""
        self.stats.oversize += 1
        self._drop_fu()
        self._clear(broken=True)
        self._check_start = False

    def _clear(self, broken: bool) -> None:
        """No unit in progress; `broken`: what comes until the next one is dropped."""
        self._parts = []
        self._types = []
        self._size = 0
        self._broken = broken
        self._held = 0
        self._held_base = None
        self._copied = 0

    def _finish(self, unit: UnitSink) -> None:
        """Close the frame in progress: emit it, or count it as dropped."""
        if self._fu is not None:
            # The timestamp moved on in the middle of a fragmented NAL.
            self._drop_fu()
            self._broken = True
        ts = self._au_ts
        self._au_ts = None
        if ts is not None:
            taken = self._take(self._ts.extend(ts))
            if taken is not None:
                unit(taken[0], taken[1], taken[2])

    def _take(self, pts: int) -> tuple[int, bytes, bool] | None:
        """The unit assembled so far as (pts, AVCC bytes, keyframe) — its one
        join — or None: dropped as broken, or nothing but parameter sets or
        SEI with a timestamp of their own (some cameras send them so), which
        then stay for the next unit. Its NAL types are in `_done_types`."""
        out = None
        if self._broken:
            self.stats.dropped_units += 1
        elif self._parts:
            types = self._types
            if not self._has_picture(types):
                # They lead the next unit: copies, not views keeping this
                # one's reads (or, from push_avcc, its whole message) alive.
                parts = self._parts
                copied = self._copied
                parts[copied:] = [bytes(p) for p in parts[copied:]]
                self._copied = len(parts)
                self._held = 0
                self._held_base = None
                return None
            out = (pts, b"".join(self._parts), self._keyframe(types))
            self._done_types = types
            self.stats.units += 1
        self._clear(broken=False)
        return out

    def _take_unit(self, pts: int) -> AccessUnit | None:
        taken = self._take(pts)
        return None if taken is None else AccessUnit(*taken, tuple(self._done_types))


class RtpNalPacketizer:
    """Access units (AVCC) to RTP packets, non-interleaved mode.

    Single NAL unit packets when a NAL fits in ``mtu`` (RTP header
    included), fragmentation units otherwise; the marker bit is set on the
    last packet of an access unit. Sequence numbers continue across calls.
    Subclasses give the NAL header size, which NALs are sent
    (:meth:`_sends`) and the FU payload header (:meth:`_fu_header`).
    """

    __slots__ = ("pt", "ssrc", "mtu", "seq", "_max_single", "_max_frag")

    #: Bytes of the codec's NAL unit header (1 for H.264, 2 for H.265).
    _nal_header: int = 1

    def __init__(self, pt: int, ssrc: int, mtu: int = 1400, *, start_seq: int = 0) -> None:
        fu_overhead = self._nal_header + 1  # the FU's payload header and FU header
        if mtu < 12 + fu_overhead + 1:
            raise ValueError("MTU too small for RTP + a fragmentation unit")
        self.pt = pt
        self.ssrc = ssrc
        self.mtu = mtu
        #: Sequence number of the next packet.
        self.seq = start_seq & 0xFFFF
        self._max_single = mtu - 12
        self._max_frag = mtu - 12 - fu_overhead

    def _sends(self, nal: memoryview) -> bool:
        """Whether this NAL goes on the wire (AUDs and stubs do not)."""
        raise NotImplementedError

    def _fu_header(self, nal: memoryview) -> tuple[bytes, int]:
        """(the FU's payload header, the NAL type for its FU header)."""
        raise NotImplementedError

    def packetize(self, au_avcc: bytes | bytearray | memoryview, ts: int) -> list[bytes]:
        """Packetise one access unit with RTP timestamp ``ts`` (masked to 32 bits)."""
        out: list[bytes] = []
        nals = [n for n in avcc_split(au_avcc) if self._sends(n)]
        if not nals:
            return out
        ts &= 0xFFFFFFFF
        pt = self.pt
        ssrc = self.ssrc
        seq = self.seq
        last = len(nals) - 1
        max_single = self._max_single
        max_frag = self._max_frag
        skip = self._nal_header
        pack = _RTP.pack
        for i, nal in enumerate(nals):
            size = len(nal)
            if size <= max_single:
                mark = 0x80 if i == last else 0
                out.append(b"".join((pack(0x80, mark | pt, seq, ts, ssrc), nal)))
                seq = (seq + 1) & 0xFFFF
                continue
            head, nal_t = self._fu_header(nal)
            # FU headers by (start bit, end bit): middle, start, end, both.
            fus = (head + bytes((nal_t,)), head + bytes((nal_t | 0x80,)),
                   head + bytes((nal_t | 0x40,)), head + bytes((nal_t | 0xC0,)))
            pos = skip
            while pos < size:
                end = min(pos + max_frag, size)
                mark = 0x80 if end == size and i == last else 0
                fu = fus[(pos == skip) | (end == size) << 1]
                out.append(b"".join((pack(0x80, mark | pt, seq, ts, ssrc), fu, nal[pos:end])))
                seq = (seq + 1) & 0xFFFF
                pos = end
        self.seq = seq
        return out
