"""H.264 over RTP (RFC 6184): depacketiser and packetiser.

The depacketiser turns a publisher's (or pulled source's) RTP packets into
access units: AVCC bytes of one whole frame. :class:`RtpNalDepacketizer`
holds what H.264 and H.265 share — sequence-gap detection, frame boundaries
(marker bit or a timestamp change; several slices with one timestamp stay one
frame), limits, parameter-set tracking — and the codec classes only unpack
their aggregation and fragmentation units.

The packetiser runs once per stream per front for RTSP players, so it builds
each packet with one ``struct.pack`` and one ``b"".join`` over memoryviews.
"""

from __future__ import annotations

import struct
from typing import Callable

from hub.media.access_unit import AccessUnit, DepacketizerStats, avcc_join, avcc_split
from hub.media.rtp import RtpPacket
from hub.media.seqnum import TimestampUnwrapper, seq_diff
from hub.media.h264 import (NAL_AUD, NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SEI, NAL_SPS,
                            NAL_STAP_A)

__all__ = ["MAX_AU_SIZE", "MAX_NALS_PER_AU", "RtpNalDepacketizer", "H264Depacketizer",
           "H264Packetizer"]

#: Largest access unit accepted (bytes of NAL data); bigger ones are dropped.
MAX_AU_SIZE = 8 * 1024 * 1024
#: Most NAL units accepted in one access unit.
MAX_NALS_PER_AU = 512

_RTP_FU_A = struct.Struct(">BBHIIBB")  # RTP header + FU indicator + FU header
_RTP = struct.Struct(">BBHII")
_U16 = struct.Struct(">H")


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
                 on_params: Callable[[RtpNalDepacketizer], None] | None = None) -> None:
        self.stats = DepacketizerStats()
        self.max_au_size = max_au_size
        self.max_nals = max_nals
        self.on_params = on_params
        #: Set when an in-band parameter set differed from the last one seen;
        #: the owner clears it after updating the stream description.
        self.params_changed = False
        self.params: dict[str, bytes | None] = {name: None for name in self._param_types.values()}
        self._ts = TimestampUnwrapper()
        self._last_seq: int | None = None
        self._check_start = False
        self._au_ts: int | None = None
        self._nals: list[bytes | memoryview] = []
        self._types: list[int] = []
        self._size = 0
        self._broken = False
        self._fu: list[bytes | memoryview] | None = None
        self._fu_size = 0

    # -- codec hooks -------------------------------------------------------

    def _unpack(self, payload: memoryview) -> None:
        raise NotImplementedError

    def _nal_type(self, nal: bytes | memoryview) -> int:
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
        stats = self.stats
        stats.packets += 1
        if self._last_seq is not None:
            d = seq_diff(pkt.sequence_number, self._last_seq)
            if d <= 0:
                stats.late += 1
                return []
            if d > 1:
                stats.lost += d - 1
                self._drop_fu()
                gap = True
                if self._au_ts is not None:
                    self._broken = True
            else:
                gap = False
        else:
            gap = False
        self._last_seq = pkt.sequence_number
        out: list[AccessUnit] = []
        if self._au_ts is not None and pkt.timestamp != self._au_ts:
            self._finish(out)
        if self._au_ts is None:
            self._au_ts = pkt.timestamp
            if gap:
                # Lost packets may have been this frame's first ones; the first
                # NAL (or fragment) seen decides (see _check_picture_start).
                self._broken = True
                self._check_start = True
        payload = memoryview(pkt.payload)
        if payload:
            self._unpack(payload)
        else:
            stats.malformed += 1
        self._check_start = False
        if pkt.marker:
            if self._fu is not None:
                self._drop_fu()
                self._broken = True
                stats.malformed += 1
            self._finish(out)
        return out

    def flush(self) -> list[AccessUnit]:
        """Emit the frame in progress (end of stream); a pending fragment is dropped.

        Without a marker nothing proves the frame complete (its last packets
        may be lost with no later packet to show the gap), so only call this
        when the stream really ended, never on a timer.
        """
        out: list[AccessUnit] = []
        if self._fu is not None:
            self._drop_fu()
            self._broken = True
        if self._au_ts is not None:
            self._finish(out)
        return out

    # -- helpers for subclasses -------------------------------------------

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
            data = bytes(nal)
            if self.params.get(name) != data:
                self.params[name] = data
                self.params_changed = True
                if self.on_params is not None:
                    self.on_params(self)
            nal = data
        if self._broken:
            return
        self._size += len(nal)
        if self._size > self.max_au_size or len(self._nals) >= self.max_nals:
            self.stats.oversize += 1
            self._broken = True
            return
        self._nals.append(nal)
        self._types.append(t)

    def _check_picture_start(self, head: bytes | memoryview) -> None:
        self._check_start = False
        if self._starts_picture(head):
            self._broken = False

    def _fu_start(self, header: bytes, data: memoryview) -> None:
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
        if self._fu_size > self.max_au_size:
            self.stats.oversize += 1
            self._drop_fu()
            self._broken = True
            return
        if end:
            self._fu = None
            self._add_nal(b"".join(fu))

    def _drop_fu(self) -> None:
        self._fu = None
        self._fu_size = 0

    def _finish(self, out: list[AccessUnit]) -> None:
        """Close the frame in progress: emit it, or count it as dropped."""
        if self._fu is not None:
            # The timestamp moved on in the middle of a fragmented NAL.
            self._drop_fu()
            self._broken = True
        ts = self._au_ts
        self._au_ts = None
        if ts is not None:
            ext = self._ts.extend(ts)
            if self._broken:
                self.stats.dropped_units += 1
            elif self._nals:
                types = self._types
                if not self._has_picture(types):
                    # Parameter sets or SEI sent with a timestamp of their own
                    # (some cameras do): they belong to the next frame.
                    self._broken = False
                    return
                out.append(AccessUnit(ext, avcc_join(self._nals), self._keyframe(types),
                                      tuple(types)))
                self.stats.units += 1
        self._nals = []
        self._types = []
        self._size = 0
        self._broken = False


class H264Depacketizer(RtpNalDepacketizer):
    """RFC 6184 packetization modes 0 and 1: single NAL, STAP-A, FU-A.

    ``sps`` and ``pps`` hold the last in-band parameter sets.
    """

    _aud_type = NAL_AUD
    _param_types = {NAL_SPS: "sps", NAL_PPS: "pps"}

    @property
    def sps(self) -> bytes | None:
        return self.params["sps"]

    @property
    def pps(self) -> bytes | None:
        return self.params["pps"]

    def _nal_type(self, nal: bytes | memoryview) -> int:
        return nal[0] & 0x1F

    def _starts_picture(self, nal: bytes | memoryview) -> bool:
        t = nal[0] & 0x1F
        if t in (NAL_SPS, NAL_PPS, NAL_AUD, NAL_SEI):
            return True
        # Slices: first_mb_in_slice is ue(v) first; a leading 1 bit means 0.
        return 1 <= t <= NAL_IDR and len(nal) > 1 and bool(nal[1] & 0x80)

    def _keyframe(self, types: list[int]) -> bool:
        return NAL_IDR in types

    def _has_picture(self, types: list[int]) -> bool:
        return any(1 <= t <= NAL_IDR for t in types)

    def _unpack(self, payload: memoryview) -> None:
        t = payload[0] & 0x1F
        if 1 <= t <= 23:
            self._add_nal(payload)
        elif t == NAL_STAP_A:
            pos = 1
            end = len(payload)
            while pos < end:
                if end - pos < 2:
                    self.stats.malformed += 1
                    self._broken = True
                    return
                size = _U16.unpack_from(payload, pos)[0]
                pos += 2
                if size == 0 or size > end - pos:
                    self.stats.malformed += 1
                    self._broken = True
                    return
                self._add_nal(payload[pos:pos + size])
                pos += size
        elif t == NAL_FU_A:
            if len(payload) < 3:
                self.stats.malformed += 1
                self._broken = True
                return
            fu = payload[1]
            if fu & 0x80:
                if fu & 0x40:  # start and end in one fragment: a complete NAL
                    self._add_nal(bytes(((payload[0] & 0xE0) | (fu & 0x1F),)) + payload[2:])
                    return
                self._fu_start(bytes(((payload[0] & 0xE0) | (fu & 0x1F),)), payload[2:])
            else:
                self._fu_continue(payload[2:], bool(fu & 0x40))
        else:
            self.stats.unsupported += 1
            self._broken = True


class H264Packetizer:
    """Access units (AVCC) to RTP packets, RFC 6184 non-interleaved mode.

    Single NAL packets when a NAL fits in ``mtu`` (RTP header included),
    FU-A fragments otherwise; the marker bit is set on the last packet of an
    access unit. Sequence numbers continue across calls.
    """

    __slots__ = ("pt", "ssrc", "mtu", "seq", "_max_single", "_max_frag")

    def __init__(self, pt: int, ssrc: int, mtu: int = 1400, *, start_seq: int = 0) -> None:
        if mtu < 12 + 3:
            raise ValueError("MTU too small for RTP + FU-A")
        self.pt = pt
        self.ssrc = ssrc
        self.mtu = mtu
        #: Sequence number of the next packet.
        self.seq = start_seq & 0xFFFF
        self._max_single = mtu - 12
        self._max_frag = mtu - 14

    def packetize(self, au_avcc: bytes | bytearray | memoryview, ts: int) -> list[bytes]:
        """Packetise one access unit with RTP timestamp ``ts`` (masked to 32 bits)."""
        out: list[bytes] = []
        nals = [n for n in avcc_split(au_avcc) if n and n[0] & 0x1F != NAL_AUD]
        if not nals:
            return out
        ts &= 0xFFFFFFFF
        pt = self.pt
        ssrc = self.ssrc
        seq = self.seq
        last = len(nals) - 1
        max_single = self._max_single
        max_frag = self._max_frag
        for i, nal in enumerate(nals):
            size = len(nal)
            if size <= max_single:
                mark = 0x80 if i == last else 0
                out.append(b"".join((_RTP.pack(0x80, mark | pt, seq, ts, ssrc), nal)))
                seq = (seq + 1) & 0xFFFF
                continue
            indicator = (nal[0] & 0xE0) | NAL_FU_A
            nal_t = nal[0] & 0x1F
            pos = 1
            while pos < size:
                end = min(pos + max_frag, size)
                fu = nal_t
                if pos == 1:
                    fu |= 0x80
                mark = 0
                if end == size:
                    fu |= 0x40
                    if i == last:
                        mark = 0x80
                out.append(b"".join((_RTP_FU_A.pack(0x80, mark | pt, seq, ts, ssrc, indicator, fu),
                                     nal[pos:end])))
                seq = (seq + 1) & 0xFFFF
                pos = end
        self.seq = seq
        return out
