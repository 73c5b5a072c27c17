"""H.265 SPS: real x265 parameter sets (Main 4:2:0 and RExt 4:4:4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.h265 import (NAL_AP, NAL_CRA, NAL_FU, NAL_IDR_W_RADL, NAL_SPS, NAL_TRAIL_R,
                            is_irap, is_keyframe, nal_type, parse_sps)

DATA = Path(__file__).parent.parent / "data"


def _sps(name: str) -> bytes:
    return (DATA / f"sps_{name}.bin").read_bytes()


def test_x265_main_1280x720() -> None:
    sps = parse_sps(_sps("x265_720"))
    assert (sps.width, sps.height, sps.fps) == (1280, 720, 25.0)
    assert (sps.profile_space, sps.tier_flag, sps.profile_idc) == (0, 0, 1)
    assert sps.profile_compatibility_flags == 0x60000000  # Main and Main 10
    assert sps.constraint_indicator_flags == 0x9000_0000_0000  # progressive, frame only
    assert sps.level_idc == 93  # 3.1
    assert (sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma) == (1, 8, 8)
    assert (sps.vps_id, sps.sps_id, sps.max_sub_layers, sps.temporal_id_nesting) == (0, 0, 1, True)
    assert sps.sar == (1, 1)


def test_x265_conformance_window_854x480() -> None:
    sps = parse_sps(_sps("x265_480"))
    assert (sps.width, sps.height, sps.fps) == (854, 480, 30.0)
    assert sps.level_idc == 90


def test_x265_rext_444() -> None:
    sps = parse_sps(_sps("x265_444_480"))
    assert sps.profile_idc == 4 and sps.chroma_format_idc == 3
    assert (sps.width, sps.height, sps.fps) == (854, 480, 30.0)
    assert sps.profile_compatibility_flags == 0x08000000


def test_nal_types() -> None:
    assert nal_type(0x42) == NAL_SPS and nal_type(0x26) == NAL_IDR_W_RADL
    assert nal_type(0x60) == NAL_AP and nal_type(0x62) == NAL_FU
    assert all(is_irap(t) for t in range(16, 24)) and not is_irap(15) and not is_irap(24)
    assert is_keyframe([32, 33, 34, NAL_CRA]) and not is_keyframe([NAL_TRAIL_R, 39])


def test_every_truncation_raises() -> None:
    data = _sps("x265_720")
    for n in range(len(data) - 12):  # fields after the VUI timing info are not read
        with pytest.raises(ProtocolError):
            parse_sps(data[:n])


@pytest.mark.parametrize("bad", [b"", b"\x40\x01\x0c\x01", b"\x42\x01"])
def test_garbage_raises(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_sps(bad)


@given(st.binary(max_size=60))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        parse_sps(b"\x42\x01" + data)
    except ProtocolError:
        pass
