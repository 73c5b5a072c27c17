"""moof + mdat: every field written, parsed back, and bytes(parsed) == original."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.mp4.boxes import iter_boxes
from hub.media.mp4.fragment import (SAMPLE_NON_SYNC, SAMPLE_SYNC, Fmp4Sample, Mfhd, Moof, Tfdt,
                                    Tfhd, TrackRun, Trun, TrunSample, sample_is_sync, styp,
                                    write_fragment)

IDR = b"\x00\x00\x00\x01\x65"
B_FRAME = b"\x00\x00\x00\x02\x01\x9a"
AAC_1 = b"\x21\x00"
AAC_2 = b"\x21\x01\x02"

EXPECTED_MOOF = bytes.fromhex(
    "000000cc" "6d6f6f66"  # moof, 204 bytes
    "00000010" "6d666864" "00000000" "00000007"  # mfhd: sequence 7
    "00000060" "74726166"  # traf (video)
    "00000010" "74666864" "00020000" "00000001"  # tfhd: default-base-is-moof, track 1
    "00000014" "74666474" "01000000" "0000000102030405"  # tfdt v1: 64-bit decode time
    "00000034" "7472756e" "01000f01"  # trun v1: data offset, duration, size, flags, cto
    "00000002" "000000d4"  # 2 samples, data at 212 (moof + mdat header)
    "00000e10" "00000005" "02000000" "00001c20"  # 3600, 5 bytes, sync, cto +7200
    "00000e10" "00000006" "01010000" "fffff1f0"  # 3600, 6 bytes, non-sync, cto -3600
    "00000054" "74726166"  # traf (audio)
    "00000014" "74666864" "00020020" "00000002" "02000000"  # + default sample flags: sync
    "00000014" "74666474" "01000000" "000000000000bb80"  # decode time 48000
    "00000024" "7472756e" "00000301"  # trun v0: data offset, duration, size
    "00000002" "000000df"  # 2 samples at 223
    "00000400" "00000002"
    "00000400" "00000003"
)


def _fragment() -> list[bytes | bytearray | memoryview]:
    return write_fragment(7, [
        TrackRun(1, 0x0102030405, [Fmp4Sample(IDR, 3600, 7200, True),
                                   Fmp4Sample(B_FRAME, 3600, -3600, False)], True),
        TrackRun(2, 48000, [Fmp4Sample(AAC_1, 1024, 0, True), Fmp4Sample(AAC_2, 1024, 0, True)],
                 False),
    ])


def test_fragment_bytes_exact() -> None:
    out = _fragment()
    assert bytes(out[0]) == EXPECTED_MOOF + bytes.fromhex("00000018" "6d646174")  # mdat: 8 + 11 + 5
    # The samples follow as the caller's own objects: nothing copied.
    assert out[1] is IDR and out[2] is B_FRAME and out[3] is AAC_1 and out[4] is AAC_2
    data = b"".join(out)
    assert data[212:223] == IDR + B_FRAME
    assert data[223:] == AAC_1 + AAC_2


def test_fragment_parses_back_field_by_field() -> None:
    moof = Moof.from_bytes(EXPECTED_MOOF)
    assert moof.mfhd == Mfhd(7)
    video, audio = moof.trafs
    assert video.tfhd == Tfhd(0x020000, 1)
    assert video.tfdt == Tfdt(1, 0x0102030405)
    assert video.truns == [Trun(1, 0xF01, 212, None, [TrunSample(3600, 5, SAMPLE_SYNC, 7200),
                                                      TrunSample(3600, 6, SAMPLE_NON_SYNC, -3600)])]
    assert audio.tfhd == Tfhd(0x020020, 2, default_flags=SAMPLE_SYNC)
    assert audio.tfdt == Tfdt(1, 48000)
    assert audio.truns == [Trun(0, 0x301, 223, None, [TrunSample(1024, 2, None, None),
                                                      TrunSample(1024, 3, None, None)])]
    assert bytes(moof) == EXPECTED_MOOF
    assert sample_is_sync(SAMPLE_SYNC) and not sample_is_sync(SAMPLE_NON_SYNC)


def test_other_box_fields_round_trip() -> None:
    tfhd = Tfhd(0x3B, 5, base_data_offset=1 << 40, sample_description_index=1, default_duration=512,
                default_size=100, default_flags=SAMPLE_NON_SYNC)
    raw = bytes(tfhd)
    assert raw == bytes.fromhex("00000028" "74666864" "0000003b" "00000005" "0000010000000000"
                                "00000001" "00000200" "00000064" "01010000")
    assert Tfhd.parse(next(iter_boxes(raw))) == tfhd
    trun = Trun(0, 0x805, -8, SAMPLE_SYNC, [TrunSample(None, None, None, 0xFFFFFFFF)])
    raw = bytes(trun)
    assert raw == bytes.fromhex("0000001c" "7472756e" "00000805" "00000001" "fffffff8" "02000000"
                                "ffffffff")  # version 0: an unsigned composition offset
    assert Trun.parse(next(iter_boxes(raw))) == trun
    tfdt = Tfdt(0, 0x1234)
    assert bytes(tfdt) == bytes.fromhex("00000010" "74666474" "00000000" "00001234")
    assert Tfdt.parse(next(iter_boxes(bytes(tfdt)))) == tfdt


def test_unknown_boxes_are_kept_in_place() -> None:
    extra = bytes.fromhex("00000008" "73647470")  # an sdtp we do not model
    traf_at = 8 + 16
    traf = bytearray(EXPECTED_MOOF[traf_at:traf_at + 0x60])
    traf[3] += 8
    raw = bytearray(EXPECTED_MOOF[:traf_at]) + traf + extra + EXPECTED_MOOF[traf_at + 0x60:]
    raw[3] += 8
    assert bytes(Moof.from_bytes(raw)) == bytes(raw)


def test_styp() -> None:
    assert styp() == bytes.fromhex("00000018" "73747970" "6d736468" "00000000" "6d736468" "6d736978")


def test_empty_runs_are_left_out() -> None:
    out = write_fragment(1, [TrackRun(1, 0, [], True), TrackRun(2, 0, [Fmp4Sample(AAC_1, 1024, 0, True)],
                                                                False)])
    moof = Moof.from_bytes(bytes(out[0])[:-8])
    assert [t.tfhd.track_id for t in moof.trafs] == [2]
    with pytest.raises(ValueError):
        write_fragment(1, [TrackRun(1, 0, [], True)])


@pytest.mark.parametrize("data", [
    bytes.fromhex("0000000c" "6d6f6f66" "00000000"),  # a moof with bytes that are no box
    bytes.fromhex("00000008" "6d6f6f66"),  # no mfhd
    bytes.fromhex("00000018" "6d6f6f66" "00000010" "6d666864" "00000000" "00000001"
                  "00000008" "74726166"),  # traf without tfhd (and a size that lies)
    EXPECTED_MOOF[:-1],  # cut short
    EXPECTED_MOOF + b"\x00",  # trailing byte
])
def test_moof_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Moof.from_bytes(data)


def test_trun_count_must_match_its_size() -> None:
    raw = bytearray(bytes(Trun(1, 0xF01, 0, None, [TrunSample(1, 2, 3, 4)])))
    raw[15] = 2  # claims two samples, holds one
    with pytest.raises(ProtocolError):
        Trun.parse(next(iter_boxes(bytes(raw))))
    # No per-sample fields: the count alone is bounded.
    empty = bytes.fromhex("00000010" "7472756e" "00000000" "ffffffff")
    with pytest.raises(ProtocolError):
        Trun.parse(next(iter_boxes(empty)))


@settings(deadline=None)  # timing is not what these check; the machine is shared
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        moof = Moof.from_bytes(data)
    except ProtocolError:
        return
    assert bytes(moof) == data


@settings(deadline=None)  # timing is not what these check; the machine is shared
@given(st.lists(st.tuples(st.integers(0, len(EXPECTED_MOOF) - 1), st.integers(0, 255)),
                min_size=1, max_size=4))
def test_damaged_moof_parses_or_protocol_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(EXPECTED_MOOF)
    for pos, value in edits:
        data[pos] = value
    try:
        moof = Moof.from_bytes(data)
    except ProtocolError:
        return
    assert bytes(moof) == bytes(data)
