"""AudioSpecificConfig: hand-computed bit layouts, explicit rates, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.aac import SAMPLE_RATES, AacConfig, sample_rate_index


@pytest.mark.parametrize("hexstr,aot,rate,channels", [
    ("1210", 2, 44100, 2),  # 00010 0100 0010 000
    ("1190", 2, 48000, 2),  # 00010 0011 0010 000
    ("1408", 2, 16000, 1),  # 00010 1000 0001 000
    ("0a10", 1, 44100, 2),  # AAC Main
])
def test_common_configs(hexstr: str, aot: int, rate: int, channels: int) -> None:
    cfg = AacConfig.parse(bytes.fromhex(hexstr))
    assert (cfg.object_type, cfg.sample_rate, cfg.channels, cfg.frame_length) == (
        aot, rate, channels, 1024)
    assert bytes(cfg) == bytes.fromhex(hexstr)
    assert bytes(AacConfig(aot, rate, channels)) == bytes.fromhex(hexstr)


def test_explicit_frequency() -> None:
    # 00010 1111 <50000 in 24 bits> 0010 000
    data = bytes.fromhex("178061a810")
    cfg = AacConfig.parse(data)
    assert (cfg.object_type, cfg.sample_rate, cfg.channels) == (2, 50000, 2)
    assert cfg.sample_rate_index is None
    assert bytes(AacConfig(2, 50000, 2)) == data


def test_frame_length_960() -> None:
    cfg = AacConfig.parse(bytes.fromhex("1214"))  # 00010 0100 0010 1 0 0
    assert cfg.frame_length == 960
    assert bytes(cfg) == bytes.fromhex("1214")


def test_escape_object_type_and_trailing_bits_round_trip() -> None:
    # 11111 000010 (aot 34) 0011 (48k) 0001 (mono) + 5 zero bits
    data = bytes.fromhex("f8 46 20")
    cfg = AacConfig.parse(data)
    assert (cfg.object_type, cfg.sample_rate, cfg.channels) == (34, 48000, 1)
    assert bytes(cfg) == data
    he = bytes.fromhex("2b8a08000000")  # HE-AAC (SBR) with its extension tail
    assert AacConfig.parse(he).object_type == 5 and bytes(AacConfig.parse(he)) == he


def test_sample_rate_table() -> None:
    assert SAMPLE_RATES[4] == 44100 and SAMPLE_RATES[11] == 8000 and len(SAMPLE_RATES) == 13
    assert sample_rate_index(48000) == 3 and sample_rate_index(44000) is None


@pytest.mark.parametrize("bad", ["", "12", "0210", "1690", "1790", "0f80000000", "1302"])
def test_garbage_raises(bad: str) -> None:
    # empty, 1 byte, AOT 0, index 13, index 15 truncated, explicit rate 0, core coder
    with pytest.raises(ProtocolError):
        AacConfig.parse(bytes.fromhex(bad))


@given(st.binary(max_size=12))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        cfg = AacConfig.parse(data)
    except ProtocolError:
        return
    assert bytes(cfg) == data
