"""H.264 SPS: real x264 parameter sets and a hand-built one with scaling lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.bits import escape_rbsp
from hub.media.h264 import NAL_IDR, NAL_SLICE, NAL_SPS, is_keyframe, nal_type, parse_sps

DATA = Path(__file__).parent.parent / "data"


def _sps(name: str) -> bytes:
    return (DATA / f"sps_{name}.bin").read_bytes()


def test_x264_high_640x360() -> None:
    sps = parse_sps(_sps("x264_high"))
    assert (sps.profile_idc, sps.constraint_flags, sps.level_idc) == (100, 0, 30)
    assert (sps.width, sps.height, sps.fps) == (640, 360, 25.0)  # 368 rows cropped by 8
    assert (sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma) == (1, 8, 8)
    assert sps.frame_mbs_only and sps.sar == (1, 1) and sps.sps_id == 0
    assert sps.codec_string == "avc1.64001e"


def test_x264_baseline_320x240() -> None:
    sps = parse_sps(_sps("x264_base"))
    assert (sps.profile_idc, sps.constraint_flags, sps.level_idc) == (66, 0xC0, 13)
    assert (sps.width, sps.height, sps.fps) == (320, 240, 30.0)


def test_x264_1080p_ntsc_rate() -> None:
    sps = parse_sps(_sps("x264_cqm"))
    assert (sps.width, sps.height) == (1920, 1080)  # 1088 cropped by 8
    assert sps.fps == pytest.approx(30000 / 1001)
    assert sps.level_idc == 40


def test_x264_interlaced_422() -> None:
    sps = parse_sps(_sps("x264_int422"))
    assert sps.profile_idc == 122 and sps.chroma_format_idc == 2
    assert not sps.frame_mbs_only
    assert (sps.width, sps.height, sps.fps) == (720, 576, 25.0)


def _bits_to_nal(header: int, bits: str) -> bytes:
    bits += "1"  # rbsp_stop_one_bit
    bits += "0" * (-len(bits) % 8)
    return bytes((header,)) + escape_rbsp(int(bits, 2).to_bytes(len(bits) // 8, "big"))


def test_hand_built_high_sps_with_scaling_lists_and_cropping() -> None:
    bits = (
        "01100100" "00000000" "00011111"  # profile 100, constraints 0, level 31
        "1"  # sps_id ue(0)
        "010" "1" "1" "0"  # chroma_format_idc 1, depths 8/8, qpprime 0
        "1"  # seq_scaling_matrix_present_flag
        + "1" + "00100" + "1" * 15  # list 0 (4x4): delta +2 then 15 x se(0)
        + "0" * 5  # lists 1..5 absent
        + "1" + "000010001"  # list 6 (8x8): se(-8) -> nextScale 0, stop
        + "0"  # list 7 absent
        + "1" "1" "011" "00101" "0"  # frame_num ue0, poc type 0, poc lsb ue2, refs ue4, gaps
        + "0000001010000"  # width_in_mbs_minus1 = 79 (1280)
        + "00000101101"  # height_in_map_units_minus1 = 44 (720)
        + "1" "1"  # frame_mbs_only, direct_8x8
        + "1" + "1" + "011" + "1" + "010"  # crop left 0, right 2, top 0, bottom 1 (units 2)
        + "1" "0" "0" "0" "0" "1"  # VUI: only timing info
        + f"{1001:032b}" + f"{60000:032b}" + "1"
    )
    sps = parse_sps(_bits_to_nal(0x67, bits))
    assert (sps.profile_idc, sps.level_idc) == (100, 31)
    assert (sps.width, sps.height) == (1280 - 4, 720 - 2)
    assert sps.fps == pytest.approx(29.97, abs=0.001)
    assert sps.sar is None


def test_nal_types_and_keyframe() -> None:
    assert nal_type(0x65) == NAL_IDR and nal_type(0x67) == NAL_SPS and nal_type(0x41) == NAL_SLICE
    assert is_keyframe([7, 8, 5]) and not is_keyframe([1, 1])


@pytest.mark.parametrize("bad", [b"", b"\x68\x64\x00\x1e", b"\x67\x64", b"\x67\x64\x00\x1e",
                                 b"\x67\x64\x00\x1e\x00\x00\x00\x00\x00\x00\x00"])
def test_garbage_raises(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_sps(bad)


def test_every_truncation_of_a_real_sps_raises() -> None:
    data = _sps("x264_high")
    for n in range(len(data) - 8):  # the tail after the timing info is not read
        with pytest.raises(ProtocolError):
            parse_sps(data[:n])


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        parse_sps(b"\x67" + data)
    except ProtocolError:
        pass
