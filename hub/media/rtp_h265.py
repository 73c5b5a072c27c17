"""H.265 over RTP (RFC 7798): depacketiser and packetiser.

Single NAL unit packets, aggregation packets (AP, type 48) and fragmentation
units (FU, type 49), without DONL fields (``sprop-max-don-diff`` absent, as
every encoder/camera we meet sends). Frame assembly, loss handling and limits
and the packetiser's loop are shared with H.264 in :mod:`hub.media.rtp_nal`.
"""

from __future__ import annotations

from hub.media.h265 import (NAL_AP, NAL_AUD, NAL_FU, NAL_IRAP_MAX, NAL_IRAP_MIN, NAL_PPS,
                            NAL_SEI_PREFIX, NAL_SPS, NAL_VPS)
from hub.media.rtp_nal import RtpNalDepacketizer, RtpNalPacketizer

__all__ = ["H265Depacketizer", "H265Packetizer"]

class H265Depacketizer(RtpNalDepacketizer):
    """RFC 7798 depacketiser; ``vps``, ``sps``, ``pps`` hold in-band parameter sets."""

    _aud_type = NAL_AUD
    _param_types = {NAL_VPS: "vps", NAL_SPS: "sps", NAL_PPS: "pps"}

    @property
    def vps(self) -> bytes | None:
        return self.params["vps"]

    def _nal_type(self, nal: bytes | bytearray | memoryview) -> int:
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
            self._unpack_aggregate(payload, 2, 2)
        elif t == NAL_FU:
            fu = payload[2]
            header = bytes(((payload[0] & 0x81) | ((fu & 0x3F) << 1), payload[1]))
            if fu & 0x80:
                self._fu_start(header, payload[3:], bool(fu & 0x40))
            else:
                self._fu_continue(payload[3:], bool(fu & 0x40))
        else:  # PACI (50) and reserved types
            self.stats.unsupported += 1
            self._broken = True


class H265Packetizer(RtpNalPacketizer):
    """Access units (AVCC with H.265 NALs) to RTP packets: single NAL or FU
    (see :class:`hub.media.rtp_nal.RtpNalPacketizer`)."""

    __slots__ = ()
    _nal_header = 2

    def _sends(self, nal: memoryview) -> bool:
        return len(nal) >= 2 and (nal[0] >> 1) & 0x3F != NAL_AUD

    def _fu_header(self, nal: memoryview) -> tuple[bytes, int]:
        return bytes(((nal[0] & 0x81) | (NAL_FU << 1), nal[1])), (nal[0] >> 1) & 0x3F
