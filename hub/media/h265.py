"""H.265 (ITU-T H.265) NAL constants and the sequence parameter set.

Like :mod:`hub.media.h264`: parsed once per stream for the API, FLV metadata
and the hvcC record. The SPS is read up to the VUI timing info; that needs
the short-term reference picture sets in between, which x265 does code with
inter-RPS prediction, so they are walked exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from hub.errors import ProtocolError
from hub.media.bits import BitReader, unescape_rbsp
from hub.media.h264 import read_vui_head

__all__ = [
    "NAL_TRAIL_N", "NAL_TRAIL_R", "NAL_BLA_W_LP", "NAL_BLA_W_RADL", "NAL_BLA_N_LP",
    "NAL_IDR_W_RADL", "NAL_IDR_N_LP", "NAL_CRA", "NAL_IRAP_MIN", "NAL_IRAP_MAX",
    "NAL_VPS", "NAL_SPS", "NAL_PPS", "NAL_AUD", "NAL_EOS", "NAL_EOB", "NAL_FD",
    "NAL_SEI_PREFIX", "NAL_SEI_SUFFIX", "NAL_AP", "NAL_FU",
    "nal_type", "is_irap", "is_keyframe", "H265Sps", "parse_sps",
]

NAL_TRAIL_N = 0
NAL_TRAIL_R = 1
NAL_BLA_W_LP = 16
NAL_BLA_W_RADL = 17
NAL_BLA_N_LP = 18
NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_CRA = 21
NAL_IRAP_MIN = 16
NAL_IRAP_MAX = 23
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_EOS = 36
NAL_EOB = 37
NAL_FD = 38
NAL_SEI_PREFIX = 39
NAL_SEI_SUFFIX = 40
# RFC 7798 aggregation and fragmentation types.
NAL_AP = 48
NAL_FU = 49

_SUB_WH = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}
_MAX_SUB_LAYERS = 7
_MAX_ST_RPS = 64
_MAX_DELTA_POCS = 32


def nal_type(header: int) -> int:
    """NAL unit type from the first byte of an H.265 NAL unit."""
    return (header >> 1) & 0x3F


def is_irap(t: int) -> bool:
    """Intra random access point types (BLA, IDR, CRA and reserved 22-23)."""
    return NAL_IRAP_MIN <= t <= NAL_IRAP_MAX


def is_keyframe(nal_types: Iterable[int]) -> bool:
    """An access unit is a keyframe when one of its NALs is an IRAP picture."""
    return any(NAL_IRAP_MIN <= t <= NAL_IRAP_MAX for t in nal_types)


@dataclass(frozen=True, slots=True)
class H265Sps:
    """The SPS fields the server uses (hvcC, API, FLV metadata)."""

    vps_id: int
    max_sub_layers: int
    temporal_id_nesting: bool
    profile_space: int
    tier_flag: int
    profile_idc: int
    profile_compatibility_flags: int  # 32 bits
    constraint_indicator_flags: int  # 48 bits
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    fps: float | None
    sar: tuple[int, int] | None


def _skip_profile_tier_level_sub_layers(r: BitReader, max_sub_minus1: int) -> None:
    flags = [(r.read_flag(), r.read_flag()) for _ in range(max_sub_minus1)]
    if max_sub_minus1 > 0:
        r.skip_bits(2 * (8 - max_sub_minus1))
    for profile_present, level_present in flags:
        if profile_present:
            r.skip_bits(88)
        if level_present:
            r.skip_bits(8)


def _skip_scaling_list_data(r: BitReader) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.read_flag():  # scaling_list_pred_mode_flag
                r.read_ue()  # scaling_list_pred_matrix_id_delta
                continue
            coef_num = min(64, 1 << (4 + (size_id << 1)))
            if size_id > 1:
                r.read_se()  # scaling_list_dc_coef_minus8
            for _ in range(coef_num):
                r.read_se()


def _read_st_ref_pic_sets(r: BitReader, count: int) -> None:
    """Walk ``count`` st_ref_pic_set() structures (7.3.7), tracking NumDeltaPocs."""
    num_delta_pocs: list[int] = []
    for idx in range(count):
        inter = r.read_flag() if idx != 0 else False
        if inter:
            r.skip_bits(1)  # delta_rps_sign
            r.read_ue()  # abs_delta_rps_minus1
            ref = num_delta_pocs[idx - 1]  # delta_idx_minus1 is 0 inside an SPS
            used_total = 0
            for _ in range(ref + 1):
                used = r.read_flag()
                use_delta = used or r.read_flag()
                used_total += use_delta
            num_delta_pocs.append(used_total)
        else:
            neg = r.read_ue()
            pos = r.read_ue()
            if neg > _MAX_DELTA_POCS or pos > _MAX_DELTA_POCS:
                raise ProtocolError("H.265: too many pictures in a reference picture set")
            for _ in range(neg + pos):
                r.read_ue()
                r.skip_bits(1)
            num_delta_pocs.append(neg + pos)


def parse_sps(nal: bytes | bytearray | memoryview) -> H265Sps:
    """Parse an SPS NAL unit (2-byte header included, escaped as on the wire)."""
    if len(nal) < 4 or (nal[0] >> 1) & 0x3F != NAL_SPS:
        raise ProtocolError("H.265: not an SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[2:]))
    vps_id = r.read_bits(4)
    max_sub_minus1 = r.read_bits(3)
    if max_sub_minus1 >= _MAX_SUB_LAYERS:
        raise ProtocolError("H.265: sps_max_sub_layers_minus1 out of range")
    nesting = r.read_flag()
    profile_space = r.read_bits(2)
    tier = r.read_bits(1)
    profile_idc = r.read_bits(5)
    compat = r.read_bits(32)
    constraints = r.read_bits(48)
    level_idc = r.read_bits(8)
    _skip_profile_tier_level_sub_layers(r, max_sub_minus1)
    sps_id = r.read_ue()
    if sps_id > 15:
        raise ProtocolError(f"H.265: sps id {sps_id}")
    chroma = r.read_ue()
    if chroma > 3:
        raise ProtocolError(f"H.265: chroma_format_idc {chroma}")
    separate_planes = r.read_flag() if chroma == 3 else False
    width = r.read_ue()
    height = r.read_ue()
    if r.read_flag():  # conformance_window_flag
        sub_w, sub_h = _SUB_WH[0 if separate_planes else chroma]
        left, right, top, bottom = r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue()
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    if width <= 0 or height <= 0:
        raise ProtocolError("H.265: empty picture")
    depth_luma = 8 + r.read_ue()
    depth_chroma = 8 + r.read_ue()
    if depth_luma > 16 or depth_chroma > 16:
        raise ProtocolError("H.265: bit depth out of range")
    log2_max_poc_lsb = r.read_ue() + 4
    if log2_max_poc_lsb > 16:
        raise ProtocolError("H.265: log2_max_pic_order_cnt_lsb out of range")
    ordering_all = r.read_flag()
    for _ in range(0 if ordering_all else max_sub_minus1, max_sub_minus1 + 1):
        r.read_ue()
        r.read_ue()
        r.read_ue()
    for _ in range(6):  # coding/transform block sizes and hierarchy depths
        r.read_ue()
    if r.read_flag() and r.read_flag():  # scaling_list_enabled, sps_scaling_list_data_present
        _skip_scaling_list_data(r)
    r.skip_bits(2)  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.read_flag():  # pcm_enabled_flag
        r.skip_bits(8)
        r.read_ue()
        r.read_ue()
        r.skip_bits(1)
    num_st_rps = r.read_ue()
    if num_st_rps > _MAX_ST_RPS:
        raise ProtocolError("H.265: too many short-term reference picture sets")
    _read_st_ref_pic_sets(r, num_st_rps)
    if r.read_flag():  # long_term_ref_pics_present_flag
        num_lt = r.read_ue()
        if num_lt > 32:
            raise ProtocolError("H.265: too many long-term reference pictures")
        for _ in range(num_lt):
            r.skip_bits(log2_max_poc_lsb + 1)
    r.skip_bits(2)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    fps: float | None = None
    sar: tuple[int, int] | None = None
    if r.read_flag():  # vui_parameters_present_flag
        sar = read_vui_head(r)
        r.skip_bits(3)  # neutral_chroma, field_seq, frame_field_info_present
        if r.read_flag():  # default_display_window_flag
            for _ in range(4):
                r.read_ue()
        if r.read_flag():  # vui_timing_info_present_flag
            units = r.read_bits(32)
            scale = r.read_bits(32)
            if units and scale:
                fps = scale / units
    return H265Sps(vps_id, max_sub_minus1 + 1, nesting, profile_space, tier, profile_idc, compat,
                   constraints, level_idc, sps_id, chroma, depth_luma, depth_chroma, width, height,
                   fps, sar)
