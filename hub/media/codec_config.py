"""Codec configuration records the web-player formats need.

FLV (and MP4-style players behind it) want the decoder configuration as an
ISO/IEC 14496-15 record — ``AVCDecoderConfigurationRecord`` (avcC) for H.264,
``HEVCDecoderConfigurationRecord`` (hvcC) for H.265 — built from the parameter
sets a publisher announced. MPEG-TS wants every raw AAC frame behind an ADTS
header. All three are computed once per stream (or per frame for ADTS, seven
bytes), never by the player path.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from hub.errors import ProtocolError

#: AVC profiles whose avcC carries chroma_format and bit depths (14496-15 5.3.3.1.2).
AVC_HIGH_PROFILES = frozenset((100, 110, 122, 144))

H265_NAL_VPS = 32
H265_NAL_SPS = 33
H265_NAL_PPS = 34


def _unescape_prefix(nal: bytes, need: int) -> bytes:
    """Remove emulation-prevention bytes (00 00 03) until ``need`` bytes are out.

    Only the fixed-position head of an SPS is read here, so the whole RBSP is
    not worth unescaping."""
    out = bytearray()
    zeros = 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
        if len(out) >= need:
            break
    return bytes(out)


def _len16(nal: bytes) -> bytes:
    if not nal or len(nal) > 0xFFFF:
        raise ValueError("parameter set must be 1..65535 bytes")
    return len(nal).to_bytes(2, "big")


def avc_decoder_config(sps_list: Sequence[bytes], pps_list: Sequence[bytes], *,
                       chroma_format_idc: int = 1, bit_depth_luma: int = 8,
                       bit_depth_chroma: int = 8) -> bytes:
    """Build an AVCDecoderConfigurationRecord with 4-byte NAL lengths.

    Profile, compatibility and level come from the first SPS (bytes 1..3 after
    the NAL header; these never contain emulation prevention). High profiles
    get the chroma/bit-depth trailer the standard requires and FFmpeg writes.
    """
    if not sps_list or not pps_list:
        raise ValueError("avcC needs at least one SPS and one PPS")
    if len(sps_list) > 31 or len(pps_list) > 255:
        raise ValueError("too many parameter sets for avcC")
    sps0 = sps_list[0]
    if len(sps0) < 4:
        raise ValueError("SPS too short")
    profile = sps0[1]
    parts: list[bytes] = [bytes((1, profile, sps0[2], sps0[3], 0xFF, 0xE0 | len(sps_list)))]
    for sps in sps_list:
        parts += (_len16(sps), sps)
    parts.append(bytes((len(pps_list),)))
    for pps in pps_list:
        parts += (_len16(pps), pps)
    if profile in AVC_HIGH_PROFILES:
        parts.append(bytes((0xFC | (chroma_format_idc & 3), 0xF8 | ((bit_depth_luma - 8) & 7),
                            0xF8 | ((bit_depth_chroma - 8) & 7), 0)))
    return b"".join(parts)


def hevc_general_ptl(sps: bytes) -> tuple[int, bool, bytes]:
    """Return (max_sub_layers, temporal_id_nesting, 12 general PTL bytes) read from
    an H.265 SPS NAL unit (with its 2-byte header): they sit at fixed positions."""
    rbsp = _unescape_prefix(sps, 2 + 1 + 12)
    if len(rbsp) < 15:
        raise ProtocolError("H.265 SPS too short")
    first = rbsp[2]
    max_sub_layers = ((first >> 1) & 7) + 1
    nesting = bool(first & 1)
    return max_sub_layers, nesting, rbsp[3:15]


def hevc_decoder_config(vps_list: Sequence[bytes], sps_list: Sequence[bytes],
                        pps_list: Sequence[bytes], *, chroma_format_idc: int = 1,
                        bit_depth_luma: int = 8, bit_depth_chroma: int = 8) -> bytes:
    """Build an HEVCDecoderConfigurationRecord with 4-byte NAL lengths.

    The general profile/tier/level (12 bytes) is copied from the first SPS;
    min_spatial_segmentation and parallelismType are 0 (unknown), frame rate
    0 (unspecified) — what FFmpeg writes for a stream without VUI
    restrictions. Arrays are marked complete (array_completeness=1): the
    parameter sets are all in the record, as ``hvc1`` requires.
    """
    if not vps_list or not sps_list or not pps_list:
        raise ValueError("hvcC needs VPS, SPS and PPS")
    sub_layers, nesting, ptl = hevc_general_ptl(sps_list[0])
    parts: list[bytes] = [
        b"\x01", ptl,
        b"\xF0\x00",  # reserved 1111 + min_spatial_segmentation_idc 0
        b"\xFC",  # reserved + parallelismType 0
        bytes((0xFC | (chroma_format_idc & 3), 0xF8 | ((bit_depth_luma - 8) & 7),
               0xF8 | ((bit_depth_chroma - 8) & 7))),
        b"\x00\x00",  # avgFrameRate
        # constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
        bytes(((sub_layers & 7) << 3 | (int(nesting) << 2) | 3,)),
        b"\x03",  # numOfArrays
    ]
    for nal_type, nals in ((H265_NAL_VPS, vps_list), (H265_NAL_SPS, sps_list),
                           (H265_NAL_PPS, pps_list)):
        if len(nals) > 0xFFFF:
            raise ValueError("too many parameter sets for hvcC")
        parts.append(bytes((0x80 | nal_type,)))
        parts.append(len(nals).to_bytes(2, "big"))
        for nal in nals:
            parts += (_len16(nal), nal)
    return b"".join(parts)


class AdtsParams(NamedTuple):
    """What an ADTS header needs, taken once per stream from its AudioSpecificConfig."""

    object_type: int  # 2 = AAC LC
    sample_rate_index: int
    channels: int


def adts_params_from_asc(asc: bytes) -> AdtsParams:
    """Read object type, sampling-frequency index and channel configuration from an
    AudioSpecificConfig. ADTS can only signal indexed rates and object types 1..4."""
    if len(asc) < 2:
        raise ProtocolError("AudioSpecificConfig too short")
    object_type = asc[0] >> 3
    sfi = ((asc[0] & 7) << 1) | (asc[1] >> 7)
    channels = (asc[1] >> 3) & 0x0F
    if object_type == 31 or sfi == 15:
        raise ProtocolError("AudioSpecificConfig not representable in ADTS")
    if not 1 <= object_type <= 4 or sfi > 12:
        raise ProtocolError("AudioSpecificConfig not representable in ADTS")
    return AdtsParams(object_type, sfi, channels)


ADTS_HEADER_LEN = 7
_ADTS_MAX_FRAME = (1 << 13) - 1


def adts_header(object_type: int, sample_rate_index: int, channels: int,
                payload_len: int) -> bytes:
    """7-byte ADTS header without CRC (MPEG-4, layer 0, buffer fullness 0x7FF = VBR)."""
    frame_len = payload_len + ADTS_HEADER_LEN
    if frame_len > _ADTS_MAX_FRAME or payload_len < 0:
        raise ValueError("AAC frame too large for ADTS")
    profile = (object_type - 1) & 3
    return bytes((
        0xFF,
        0xF1,  # sync low nibble, MPEG-4, layer 00, protection_absent 1
        (profile << 6) | ((sample_rate_index & 0x0F) << 2) | ((channels >> 2) & 1),
        ((channels & 3) << 6) | (frame_len >> 11),
        (frame_len >> 3) & 0xFF,
        ((frame_len & 7) << 5) | 0x1F,
        0xFC,  # buffer fullness low 6 bits + 0 raw data blocks minus one
    ))
