"""H.264 (ISO/IEC 14496-10) NAL constants and the sequence parameter set.

The SPS gives a stream's picture size, profile and frame rate for the API,
the FLV ``onMetaData`` and the avcC record. It is parsed once per stream (and
again only when a publisher sends a different SPS in band).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from hub.errors import ProtocolError
from hub.media.bits import BitReader, unescape_rbsp

__all__ = [
    "NAL_SLICE", "NAL_DPA", "NAL_IDR", "NAL_SEI", "NAL_SPS", "NAL_PPS", "NAL_AUD",
    "NAL_END_SEQ", "NAL_END_STREAM", "NAL_FILLER", "NAL_STAP_A", "NAL_STAP_B",
    "NAL_MTAP16", "NAL_MTAP24", "NAL_FU_A", "NAL_FU_B",
    "nal_type", "is_keyframe", "H264Sps", "parse_sps",
]

NAL_SLICE = 1
NAL_DPA = 2
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_END_SEQ = 10
NAL_END_STREAM = 11
NAL_FILLER = 12
# RFC 6184 aggregation and fragmentation types.
NAL_STAP_A = 24
NAL_STAP_B = 25
NAL_MTAP16 = 26
NAL_MTAP24 = 27
NAL_FU_A = 28
NAL_FU_B = 29

#: Profiles whose SPS carries chroma format, bit depths and scaling matrices.
_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))
#: (SubWidthC, SubHeightC) by chroma_format_idc (Table 6-1).
_SUB_WH = {1: (2, 2), 2: (2, 1), 3: (1, 1)}


def nal_type(header: int) -> int:
    """NAL unit type from the first byte of a NAL unit."""
    return header & 0x1F


def is_keyframe(nal_types: Iterable[int]) -> bool:
    """An access unit is a random access point when it holds an IDR slice."""
    return NAL_IDR in nal_types


@dataclass(frozen=True, slots=True)
class H264Sps:
    """The SPS fields the server uses."""

    profile_idc: int
    constraint_flags: int  # the whole constraint_set byte (avcC profile_compatibility)
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    frame_mbs_only: bool
    fps: float | None
    sar: tuple[int, int] | None

    @property
    def codec_string(self) -> str:
        """RFC 6381 ``avc1.PPCCLL`` string (HLS CODECS, MSE)."""
        return f"avc1.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


#: Table E-1 sample aspect ratios by aspect_ratio_idc.
_SAR_TABLE = {
    1: (1, 1), 2: (12, 11), 3: (10, 11), 4: (16, 11), 5: (40, 33), 6: (24, 11), 7: (20, 11),
    8: (32, 11), 9: (80, 33), 10: (18, 11), 11: (15, 11), 12: (64, 33), 13: (160, 99),
    14: (4, 3), 15: (3, 2), 16: (2, 1),
}


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = 8
    nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.read_se()) & 0xFF
        last = nxt if nxt != 0 else last


def read_vui_sar(r: BitReader) -> tuple[int, int] | None:
    """aspect_ratio_info (same layout in H.264 and H.265 VUI)."""
    if not r.read_flag():
        return None
    idc = r.read_bits(8)
    if idc == 255:
        return (r.read_bits(16), r.read_bits(16))
    return _SAR_TABLE.get(idc)


def read_vui_head(r: BitReader) -> tuple[int, int] | None:
    """The VUI's first fields, laid out alike in H.264 and H.265: the
    sample aspect ratio (returned), then overscan, video signal type and
    chroma location (skipped)."""
    sar = read_vui_sar(r)
    if r.read_flag():  # overscan_info_present_flag
        r.skip_bits(1)
    if r.read_flag():  # video_signal_type_present_flag
        r.skip_bits(4)
        if r.read_flag():
            r.skip_bits(24)
    if r.read_flag():  # chroma_loc_info_present_flag
        r.read_ue()
        r.read_ue()
    return sar


def parse_sps(nal: bytes | bytearray | memoryview) -> H264Sps:
    """Parse an SPS NAL unit (with its 1-byte header, escaped as on the wire).

    Raises ProtocolError for anything that is not a well-formed SPS up to the
    VUI timing info (fields after that are not read).
    """
    if len(nal) < 4 or nal[0] & 0x1F != NAL_SPS:
        raise ProtocolError("H.264: not an SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[1:]))
    profile_idc = r.read_bits(8)
    constraint = r.read_bits(8)
    level_idc = r.read_bits(8)
    sps_id = r.read_ue()
    if sps_id > 31:
        raise ProtocolError(f"H.264: sps id {sps_id}")
    chroma_format_idc = 1
    separate_planes = False
    depth_luma = depth_chroma = 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.read_ue()
        if chroma_format_idc > 3:
            raise ProtocolError(f"H.264: chroma_format_idc {chroma_format_idc}")
        if chroma_format_idc == 3:
            separate_planes = r.read_flag()
        depth_luma = 8 + r.read_ue()
        depth_chroma = 8 + r.read_ue()
        if depth_luma > 14 or depth_chroma > 14:
            raise ProtocolError("H.264: bit depth out of range")
        r.skip_bits(1)  # qpprime_y_zero_transform_bypass_flag
        if r.read_flag():  # seq_scaling_matrix_present_flag
            for i in range(12 if chroma_format_idc == 3 else 8):
                if r.read_flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.read_ue()  # log2_max_frame_num_minus4
    poc_type = r.read_ue()
    if poc_type == 0:
        r.read_ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        r.skip_bits(1)
        r.read_se()
        r.read_se()
        cycle = r.read_ue()
        if cycle > 255:
            raise ProtocolError("H.264: num_ref_frames_in_pic_order_cnt_cycle too large")
        for _ in range(cycle):
            r.read_se()
    elif poc_type != 2:
        raise ProtocolError(f"H.264: pic_order_cnt_type {poc_type}")
    r.read_ue()  # max_num_ref_frames
    r.skip_bits(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.read_ue() + 1
    height_map_units = r.read_ue() + 1
    frame_mbs_only = r.read_flag()
    if not frame_mbs_only:
        r.skip_bits(1)  # mb_adaptive_frame_field_flag
    r.skip_bits(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if r.read_flag():  # frame_cropping_flag
        left, right, top, bottom = r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue()
        chroma_array_type = 0 if separate_planes else chroma_format_idc
        if chroma_array_type == 0:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            sub_w, sub_h = _SUB_WH[chroma_array_type]
            unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise ProtocolError("H.264: cropping larger than the picture")
    fps: float | None = None
    sar: tuple[int, int] | None = None
    if r.read_flag():  # vui_parameters_present_flag
        sar = read_vui_head(r)
        if r.read_flag():  # timing_info_present_flag
            units = r.read_bits(32)
            scale = r.read_bits(32)
            if units and scale:
                fps = scale / (2 * units)
    return H264Sps(profile_idc, constraint, level_idc, sps_id, chroma_format_idc, depth_luma,
                   depth_chroma, width, height, frame_mbs_only, fps, sar)
