"""H.265 over RTP (RFC 7798): depacketiser and packetiser.

Single NAL unit packets, aggregation packets (AP, type 48) and fragmentation
units (FU, type 49), without DONL fields (``sprop-max-don-diff`` absent, as
every encoder/camera we meet sends). Frame assembly, loss handling and limits
are shared with H.264 in :class:`hub.media.rtp_h264.RtpNalDepacketizer`.
"""

from __future__ import annotations

import struct

from hub.media.access_unit import avcc_split
from hub.media.h265 import (NAL_AP, NAL_AUD, NAL_FU, NAL_IRAP_MAX, NAL_IRAP_MIN, NAL_PPS,
                            NAL_SEI_PREFIX, NAL_SPS, NAL_VPS)
from hub.media.rtp_h264 import RtpNalDepacketizer

__all__ = ["H265Depacketizer", "H265Packetizer"]

_RTP = struct.Struct(">BBHII")
_RTP_FU = struct.Struct(">BBHIIBBB")  # RTP header + 2-byte payload header + FU header
_U16 = struct.Struct(">H")


class H265Depacketizer(RtpNalDepacketizer):
    """RFC 7798 depacketiser; ``vps``, ``sps``, ``pps`` hold in-band parameter sets."""

    _aud_type = NAL_AUD
    _param_types = {NAL_VPS: "vps", NAL_SPS: "sps", NAL_PPS: "pps"}

    @property
    def vps(self) -> bytes | None:
        return self.params["vps"]

    @property
    def sps(self) -> bytes | None:
        return self.params["sps"]

    @property
    def pps(self) -> bytes | None:
        return self.params["pps"]

    def _nal_type(self, nal: bytes | memoryview) -> int:
        return (nal[0] >> 1) & 0x3F

    def _starts_picture(self, nal: bytes | memoryview) -> bool:
        t = (nal[0] >> 1) & 0x3F
        if t in (NAL_VPS, NAL_SPS, NAL_PPS, NAL_AUD, NAL_SEI_PREFIX):
            return True
        # VCL NALs: first_slice_segment_in_pic_flag is the first bit after the header.
        return t < 32 and len(nal) > 2 and bool(nal[2] & 0x80)

    def _keyframe(self, types: list[int]) -> bool:
        return any(NAL_IRAP_MIN <= t <= NAL_IRAP_MAX for t in types)

    def _has_picture(self, types: list[int]) -> bool:
        return any(t < 32 for t in types)

    def _unpack(self, payload: memoryview) -> None:
        if len(payload) < 3:
            self.stats.malformed += 1
            self._broken = True
            return
        t = (payload[0] >> 1) & 0x3F
        if t < NAL_AP:
            self._add_nal(payload)
        elif t == NAL_AP:
            pos = 2
            end = len(payload)
            while pos < end:
                if end - pos < 2:
                    self.stats.malformed += 1
                    self._broken = True
                    return
                size = _U16.unpack_from(payload, pos)[0]
                pos += 2
                if size < 2 or size > end - pos:
                    self.stats.malformed += 1
                    self._broken = True
                    return
                self._add_nal(payload[pos:pos + size])
                pos += size
        elif t == NAL_FU:
            fu = payload[2]
            header = bytes(((payload[0] & 0x81) | ((fu & 0x3F) << 1), payload[1]))
            if fu & 0x80:
                if fu & 0x40:
                    self._add_nal(header + payload[3:])
                    return
                self._fu_start(header, payload[3:])
            else:
                self._fu_continue(payload[3:], bool(fu & 0x40))
        else:  # PACI (50) and reserved types
            self.stats.unsupported += 1
            self._broken = True


class H265Packetizer:
    """Access units (AVCC with H.265 NALs) to RTP packets: single NAL or FU.

    Same contract as :class:`hub.media.rtp_h264.H264Packetizer`.
    """

    __slots__ = ("pt", "ssrc", "mtu", "seq", "_max_single", "_max_frag")

    def __init__(self, pt: int, ssrc: int, mtu: int = 1400, *, start_seq: int = 0) -> None:
        if mtu < 12 + 4:
            raise ValueError("MTU too small for RTP + FU")
        self.pt = pt
        self.ssrc = ssrc
        self.mtu = mtu
        #: Sequence number of the next packet.
        self.seq = start_seq & 0xFFFF
        self._max_single = mtu - 12
        self._max_frag = mtu - 15

    def packetize(self, au_avcc: bytes | bytearray | memoryview, ts: int) -> list[bytes]:
        """Packetise one access unit with RTP timestamp ``ts`` (masked to 32 bits)."""
        out: list[bytes] = []
        nals = [n for n in avcc_split(au_avcc) if len(n) >= 2 and (n[0] >> 1) & 0x3F != NAL_AUD]
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
            h0 = (nal[0] & 0x81) | (NAL_FU << 1)
            h1 = nal[1]
            nal_t = (nal[0] >> 1) & 0x3F
            pos = 2
            while pos < size:
                end = min(pos + max_frag, size)
                fu = nal_t
                if pos == 2:
                    fu |= 0x80
                mark = 0
                if end == size:
                    fu |= 0x40
                    if i == last:
                        mark = 0x80
                out.append(b"".join((_RTP_FU.pack(0x80, mark | pt, seq, ts, ssrc, h0, h1, fu),
                                     nal[pos:end])))
                seq = (seq + 1) & 0xFFFF
                pos = end
        self.seq = seq
        return out
