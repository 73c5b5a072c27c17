"""H.264 over RTP (RFC 6184): depacketiser and packetiser.

The depacketiser turns a publisher's (or pulled source's) RTP packets into
access units: AVCC bytes of one whole frame. What H.264 and H.265 share
(frame assembly, loss handling, limits, parameter sets, the packetiser's
loop) lives in :mod:`hub.media.rtp_nal`; this module adds the RFC 6184 NAL
header, STAP-A and FU-A.
"""

from __future__ import annotations

from hub.media.h264 import NAL_AUD, NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SEI, NAL_SPS, NAL_STAP_A
from hub.media.rtp_nal import MAX_AU_SIZE, MAX_NALS_PER_AU, RtpNalDepacketizer, RtpNalPacketizer

__all__ = ["MAX_AU_SIZE", "MAX_NALS_PER_AU", "RtpNalDepacketizer", "H264Depacketizer",
           "H264Packetizer"]


class H264Depacketizer(RtpNalDepacketizer):
    """RFC 6184 packetization modes 0 and 1: single NAL, STAP-A, FU-A.

    ``sps`` and ``pps`` (on the base) hold the last parameter sets seen.
    """

    _aud_type = NAL_AUD
    _param_types = {NAL_SPS: "sps", NAL_PPS: "pps"}

    def _nal_type(self, nal: bytes | bytearray | memoryview) -> int:
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
            self._unpack_aggregate(payload, 1, 1)
        elif t == NAL_FU_A:
            if len(payload) < 3:
                self.stats.malformed += 1
                self._broken = True
                return
            fu = payload[1]
            if fu & 0x80:
                self._fu_start(bytes(((payload[0] & 0xE0) | (fu & 0x1F),)), payload[2:], bool(fu & 0x40))
            else:
                self._fu_continue(payload[2:], bool(fu & 0x40))
        else:
            self.stats.unsupported += 1
            self._broken = True


class H264Packetizer(RtpNalPacketizer):
    """Access units (AVCC) to RTP packets, RFC 6184 non-interleaved mode:
    single NAL unit packets and FU-A (see :class:`RtpNalPacketizer`)."""

    __slots__ = ()
    _nal_header = 1

    def _sends(self, nal: memoryview) -> bool:
        return bool(nal) and nal[0] & 0x1F != NAL_AUD

    def _fu_header(self, nal: memoryview) -> tuple[bytes, int]:
        return bytes(((nal[0] & 0xE0) | NAL_FU_A,)), nal[0] & 0x1F
