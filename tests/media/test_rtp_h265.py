"""RFC 7798: hand-built AP and FU packets, packetiser bytes, loss, PyAV end to end."""

from __future__ import annotations

import fractions

import av
import pytest
from hypothesis import given, settings, strategies as st

from hub.media.access_unit import AccessUnit, annexb_split, avcc_join, avcc_split, avcc_to_annexb
from hub.media.rtp import RtpPacket
from hub.media.rtp_h265 import H265Depacketizer, H265Packetizer

VPS = bytes.fromhex("40010c01ff")
SPS = bytes.fromhex("42010101")
PPS = bytes.fromhex("4401c172")
IDR = bytes.fromhex("2601 af09 40f3 b8")

AP = bytes.fromhex("8060 0007 00015f90 0a0b0c0d 6001 0005 40010c01ff 0004 42010101 0004 4401c172")
FU_START = bytes.fromhex("8060 0008 00015f90 0a0b0c0d 6201 93 af09")
FU_MIDDLE = bytes.fromhex("8060 0009 00015f90 0a0b0c0d 6201 13 40f3")
FU_END = bytes.fromhex("80e0 000a 00015f90 0a0b0c0d 6201 53 b8")


def _push_all(d: H265Depacketizer, packets: list[bytes]) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for p in packets:
        out += d.push(RtpPacket.parse(p))
    return out


def test_hand_built_packets_reserialise() -> None:
    for raw in (AP, FU_START, FU_MIDDLE, FU_END):
        p = RtpPacket.parse(raw)
        assert (p.payload_type, p.timestamp, p.ssrc) == (96, 90000, 0x0A0B0C0D)
        assert bytes(p) == raw


def test_ap_and_fu_make_one_keyframe() -> None:
    d = H265Depacketizer()
    (au,) = _push_all(d, [AP, FU_START, FU_MIDDLE, FU_END])
    assert au.data == bytes.fromhex("00000005 40010c01ff 00000004 42010101 00000004 4401c172"
                                    "00000007 2601af0940f3b8")
    assert au.nal_types == (32, 33, 34, 19) and au.keyframe and au.pts == 90000
    assert (d.vps, d.sps, d.pps) == (VPS, SPS, PPS) and d.params_changed


def test_single_nal_and_aud_dropped() -> None:
    pkts = [bytes.fromhex("8060 0001 00000064 00000001 4601 50"),  # AUD (35)
            bytes.fromhex("80e0 0002 00000064 00000001 0201 d0 11")]  # TRAIL_R
    (au,) = _push_all(H265Depacketizer(), pkts)
    assert au.data == bytes.fromhex("00000004 0201d011") and not au.keyframe and au.nal_types == (1,)


def test_lost_fu_middle_drops_that_frame_only() -> None:
    d = H265Depacketizer()
    after = bytes.fromhex("80e0 000b 0001b774 0a0b0c0d 0201 d0")
    aus = _push_all(d, [AP, FU_START, FU_END, after])
    assert [a.pts for a in aus] == [0x1B774] and d.stats.lost == 1 and d.stats.dropped_units == 1
    assert d.sps == SPS  # parameter sets are still tracked from the broken frame


def test_malformed_and_unsupported() -> None:
    d = H265Depacketizer()
    aus = _push_all(d, [bytes.fromhex("80e0 0001 00000001 00000001 6001 0009 4001"),
                        bytes.fromhex("80e0 0002 00000002 00000001 6401 00"),  # PACI
                        bytes.fromhex("80e0 0003 00000003 00000001 62"),
                        bytes.fromhex("80e0 0004 00000004 00000001 0201 d0")])
    assert [a.pts for a in aus] == [4] and d.stats.malformed == 2 and d.stats.unsupported == 1


def test_packetizer_bytes() -> None:
    pk = H265Packetizer(96, 0x0A0B0C0D, mtu=17, start_seq=65535)
    assert pk.packetize(avcc_join([SPS, IDR]), 90000) == [
        bytes.fromhex("8060 ffff 00015f90 0a0b0c0d 42010101"),
        bytes.fromhex("8060 0000 00015f90 0a0b0c0d 6201 93 af09"),
        bytes.fromhex("8060 0001 00015f90 0a0b0c0d 6201 13 40f3"),
        bytes.fromhex("80e0 0002 00015f90 0a0b0c0d 6201 53 b8"),
    ]
    assert pk.seq == 3


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_loss_and_reordering_never_raise_or_corrupt(data: st.DataObject) -> None:
    frames = [[VPS, SPS, PPS, b"\x26\x01\xaf" + bytes(range(150))],
              [b"\x02\x01\xd0" + bytes(60), b"\x02\x01\x40" + bytes(70)], [b"\x02\x01\xd0\x01" * 40]]
    pk = H265Packetizer(96, 1, mtu=50)
    packets = [p for i, f in enumerate(frames) for p in pk.packetize(avcc_join(f), 3000 * i)]
    kept = data.draw(st.lists(st.sampled_from(packets), max_size=len(packets) + 3))
    d = H265Depacketizer()
    out: list[AccessUnit] = []
    for p in kept:
        out += d.push(RtpPacket.parse(p))
    for au in out:
        original = frames[au.pts // 3000]
        nals = [bytes(n) for n in avcc_split(au.data)]
        assert nals == original[len(original) - len(nals):]
        assert (nals[-1][0] >> 1) & 0x3F < 32


@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.booleans(),
                          st.binary(max_size=30)), max_size=20))
def test_random_payloads_never_raise(items: list[tuple[int, int, bool, bytes]]) -> None:
    d = H265Depacketizer()
    for seq, ts, marker, payload in items:
        d.push(RtpPacket(96, seq, ts, 1, marker, payload))
    d.flush()


def test_pyav_end_to_end_x265() -> None:
    src = av.open("testsrc=size=320x240:rate=25", format="lavfi")
    frames = []
    for i, frame in enumerate(src.decode(video=0)):
        if i == 30:
            break
        frames.append(frame.reformat(format="yuv420p"))
    src.close()
    enc = av.CodecContext.create("libx265", "w")
    enc.width, enc.height, enc.pix_fmt = 320, 240, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.options = {"preset": "ultrafast", "x265-params": "log-level=error:keyint=10"}
    aus: list[bytes] = []
    for frame in [*frames, None]:
        for pkt in enc.encode(frame):
            aus.append(avcc_join([n for n in annexb_split(bytes(pkt)) if (n[0] >> 1) & 0x3F != 35]))
    assert len(aus) == 30
    pk = H265Packetizer(96, 7, mtu=500, start_seq=65530)
    d = H265Depacketizer()
    got: list[AccessUnit] = []
    for i, au in enumerate(aus):
        for p in pk.packetize(au, 0xFFFFF000 + 3600 * i):
            got += d.push(RtpPacket.parse(p))
    assert [a.data for a in got] == aus
    assert got[0].keyframe and sum(a.keyframe for a in got) >= 3
    assert got[-1].pts == 0xFFFFF000 + 3600 * 29
    dec = av.CodecContext.create("hevc", "r")
    decoded = []
    for a in got:
        decoded += dec.decode(av.Packet(avcc_to_annexb(a.data)))
    decoded += dec.decode(None)
    assert len(decoded) == 30 and all((f.width, f.height) == (320, 240) for f in decoded)


def test_ffmpeg_capture_ap_fu_b_frames() -> None:
    """x265 through FFmpeg's RTP muxer: AP with VPS/SPS/PPS, FU, B-frames."""
    from tests.media.test_rtp_h264 import read_capture
    raw = read_capture("rtp_ffmpeg_h265.bin")
    packets = [RtpPacket.parse(p) for p in raw]
    assert [bytes(p) for p in packets] == raw
    d = H265Depacketizer()
    aus: list[AccessUnit] = []
    for p in packets:
        aus += d.push(p)
    assert len(aus) == 10 and d.stats.lost == 0 and d.stats.dropped_units == 0
    # Open GOP: IDR, then the CRA five frames on (decoded before the RASL/RADL
    # pictures between them), then the rest.
    assert [a.keyframe for a in aus] == [True, True] + [False] * 8
    assert aus[0].nal_types == (32, 33, 34, 39, 20) and aus[1].nal_types == (32, 33, 34, 39, 21)
    assert sorted(a.pts - aus[0].pts for a in aus) == [3600 * i for i in range(10)]
    assert d.vps and d.sps and d.pps
    dec = av.CodecContext.create("hevc", "r")
    frames = []
    for a in aus:
        frames += dec.decode(av.Packet(avcc_to_annexb(a.data)))
    frames += dec.decode(None)
    assert len(frames) == 10 and all((f.width, f.height) == (320, 240) for f in frames)


def test_whole_units_give_what_rtp_gives() -> None:
    """AUD dropped, VPS/SPS/PPS tracked, IRAP a keyframe: as by RTP."""
    by_rtp = _push_all(H265Depacketizer(), [AP, FU_START, FU_MIDDLE, FU_END])
    d = H265Depacketizer()
    aud = bytes.fromhex("4601 50")
    whole = b"".join(len(n).to_bytes(4, "big") + n for n in (aud, VPS, SPS, PPS, IDR))
    assert [d.push_avcc(whole, 90000)] == by_rtp
    assert (d.vps, d.sps, d.pps) == (VPS, SPS, PPS)
    d.params_changed = False
    d.set_params([VPS, SPS, PPS])
    assert not d.params_changed  # the same sets: no change


def test_packetizer_refuses_an_mtu_without_room_for_a_fragment() -> None:
    with pytest.raises(ValueError):
        H265Packetizer(96, 1, mtu=15)
    assert len(H265Packetizer(96, 1, mtu=16).packetize(avcc_join([IDR]), 0)) == 5


def test_endless_empty_fragments_are_cut_at_the_piece_bound() -> None:
    """An FU whose fragments carry nothing never reaches the byte limit:
    each was a view kept (~200 bytes for 3 of payload), without end. Past
    MAX_PIECES_PER_AU the NAL is dropped, and nothing of it stays."""
    import tracemalloc

    from hub.media.rtp_nal import MAX_PIECES_PER_AU

    d = H265Depacketizer()
    n = 3 * MAX_PIECES_PER_AU
    start, middle = bytes.fromhex("6201 93 af09"), bytes.fromhex("6201 13")
    read = memoryview(start + middle * n)  # one TCP read: the views keep it, not copies
    units: list[int] = []
    tracemalloc.start()
    try:
        d.feed(0, 1000, False, read[:len(start)], lambda pts, data, key: units.append(pts))
        pos = len(start)
        for seq in range(1, n + 1):
            d.feed(seq, 1000, False, read[pos:pos + 3], lambda pts, data, key: units.append(pts))
            pos += 3
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 256 * 1024, held  # was ~10 MB here, growing with every packet
    assert d.stats.oversize == 1
    _push_all(d, [bytes.fromhex("80e0 %04x 00002000 0a0b0c0d 2601 af09" % ((n + 1) & 0xFFFF))])
    assert d.stats.dropped_units == 1 and d.stats.units == 1  # the next frame is whole again
