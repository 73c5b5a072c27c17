"""RFC 6184: hand-built packets, packetiser bytes, loss handling, PyAV end to end."""

from __future__ import annotations

import fractions

import av
import pytest
from hypothesis import given, settings, strategies as st

from hub.media.access_unit import AccessUnit, annexb_split, avcc_join, avcc_split, avcc_to_annexb
from hub.media.rtp import RtpPacket
from hub.media.rtp_h264 import H264Depacketizer, H264Packetizer

SPS = bytes.fromhex("6742c01e")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("65 88 84 00 01 02 03 04 05 06 07")  # 11 bytes
HDR = "0000000bb8 11223344"[2:]  # ts 3000, ssrc

SINGLE = bytes.fromhex("80e0 0001 00000bb8 11223344 65 88 84 00 ff")
STAP_A = bytes.fromhex("8060 0001 00000bb8 11223344 18 0004 6742c01e 0004 68ce3c80")
FU_START = bytes.fromhex("8060 0002 00000bb8 11223344 7c 85 8884 0001")
FU_MIDDLE = bytes.fromhex("8060 0003 00000bb8 11223344 7c 05 0203 0405")
FU_END = bytes.fromhex("80e0 0004 00000bb8 11223344 7c 45 0607")


def _push_all(d: H264Depacketizer, packets: list[bytes]) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for p in packets:
        out += d.push(RtpPacket.parse(p))
    return out


def test_hand_built_packets_parse_and_reserialise() -> None:
    for raw in (SINGLE, STAP_A, FU_START, FU_MIDDLE, FU_END):
        p = RtpPacket.parse(raw)
        assert (p.payload_type, p.timestamp, p.ssrc) == (96, 3000, 0x11223344)
        assert bytes(p) == raw
    assert RtpPacket.parse(FU_END).marker and not RtpPacket.parse(FU_START).marker


def test_single_nal() -> None:
    (au,) = _push_all(H264Depacketizer(), [SINGLE])
    assert au == AccessUnit(3000, bytes.fromhex("00000005 6588840 0ff".replace(" ", "")), True, (5,))


def test_stap_a_and_fu_a_make_one_keyframe() -> None:
    d = H264Depacketizer()
    seen: list[object] = []
    d.on_params = seen.append
    (au,) = _push_all(d, [STAP_A, FU_START, FU_MIDDLE, FU_END])
    assert au.data == bytes.fromhex("00000004 6742c01e 00000004 68ce3c80 0000000b"
                                    "65 8884 0001 0203 0405 0607")
    assert au.nal_types == (7, 8, 5) and au.keyframe and au.pts == 3000
    assert d.sps == SPS and d.pps == PPS and d.params_changed and seen == [d, d]
    assert d.stats.units == 1 and d.stats.lost == 0


def test_params_changed_only_on_a_new_value() -> None:
    d = H264Depacketizer()
    _push_all(d, [STAP_A])
    d.params_changed = False
    again = bytearray(STAP_A)
    again[3] = 9  # next sequence numbers
    again[7] = 0xBC  # new timestamp
    _push_all(d, [bytes(again)])
    assert not d.params_changed


def test_a_parameter_set_too_big_to_follow_stays_in_its_unit_not_in_the_description() -> None:
    """A publisher's 8 MiB "PPS" went into the SDP, every front's description
    and its players' headers; past MAX_PARAM_SET (64 KiB) it is only a NAL unit."""
    d = H264Depacketizer()
    d.set_params([SPS, PPS])
    d.params_changed = False
    huge = b"\x68" + b"\x11" * (1 << 20)
    d.set_params([huge])
    assert d.pps == PPS and not d.params_changed and d.stats.malformed == 1
    idr = b"\x65\x88\x84"
    units = _push_all(d, H264Packetizer(96, 0x1234).packetize(avcc_join([huge, idr]), 3000))
    assert [avcc_split(au.data) for au in units] == [[huge, idr]]  # the unit carries it as it came
    assert d.pps == PPS and not d.params_changed


def test_timestamp_change_ends_a_frame_without_marker() -> None:
    p1 = bytes.fromhex("8060 0001 00000bb8 11223344 4188")  # non-IDR, no marker
    p2 = bytes.fromhex("8060 0002 00000f3c 11223344 4188")  # next ts
    d = H264Depacketizer()
    assert _push_all(d, [p1]) == []
    (au,) = _push_all(d, [p2])  # the timestamp moved on: the first frame is complete
    assert au.pts == 3000 and not au.keyframe and au.data == bytes.fromhex("00000002 4188")
    (last,) = d.flush()
    assert last.pts == 3900


def test_two_slices_stay_one_access_unit() -> None:
    s1 = bytes.fromhex("8060 0001 00000bb8 11223344 6588 aa")  # first_mb 0
    s2 = bytes.fromhex("80e0 0002 00000bb8 11223344 6524 bb")  # first_mb != 0, marker
    (au,) = _push_all(H264Depacketizer(), [s1, s2])
    assert au.data == bytes.fromhex("00000003 6588aa 00000003 6524bb") and au.nal_types == (5, 5)


def _frame(seq: int, ts: int, packets: list[str]) -> list[bytes]:
    out = []
    for i, payload in enumerate(packets):
        mark = 0xE0 if i == len(packets) - 1 else 0x60
        out.append(bytes((0x80, mark)) + ((seq + i) & 0xFFFF).to_bytes(2, "big")
                   + ts.to_bytes(4, "big") + bytes.fromhex("11223344" + payload))
    return out


def test_lost_fu_a_middle_drops_that_frame_only() -> None:
    f1 = _frame(10, 1000, ["7c85 8801", "7c05 0203", "7c45 0405"])
    f2 = _frame(13, 4000, ["7c81 9a01", "7c01 0203", "7c41 0405"])
    f3 = _frame(16, 7000, ["4188 99"])
    d = H264Depacketizer()
    aus = _push_all(d, f1 + [f2[0], f2[2]] + f3)
    assert [a.pts for a in aus] == [1000, 7000]
    assert aus[0].data == bytes.fromhex("00000007 65 8801 0203 0405")
    assert d.stats.lost == 1 and d.stats.dropped_units == 1 and d.stats.units == 2


def test_loss_between_frames_drops_a_frame_missing_its_start() -> None:
    f1 = _frame(1, 1000, ["6588"])
    f2 = _frame(2, 4000, ["4188", "4124"])  # two slices; the first one is lost
    f3 = _frame(4, 7000, ["06 05", "4188"])  # SEI then a slice, after nothing lost
    f4 = _frame(7, 9000, ["4188"])  # seq 6 (a whole frame) lost: this one starts visibly
    d = H264Depacketizer()
    aus = _push_all(d, f1 + f2[1:] + f3 + f4)
    assert [a.pts for a in aus] == [1000, 7000, 9000]
    assert d.stats.lost == 2 and d.stats.dropped_units == 1


def test_late_and_duplicate_packets_are_discarded() -> None:
    f1 = _frame(100, 1000, ["6588 01", "6524 02"])
    d = H264Depacketizer()
    aus = _push_all(d, [f1[0], f1[0], f1[1], f1[0]])
    assert len(aus) == 1 and d.stats.late == 2


def test_sequence_and_timestamp_wrap() -> None:
    f1 = _frame(65535, 0xFFFFFFFF - 99, ["6588 01", "6524 02"])  # seq 65535, 0
    f2 = _frame(1, 3500, ["4188"])
    aus = _push_all(H264Depacketizer(), f1 + f2)
    assert [a.pts for a in aus] == [0xFFFFFFFF - 99, (1 << 32) + 3500]


def test_limits_drop_and_count() -> None:
    d = H264Depacketizer(max_nals=2)
    (au,) = _push_all(d, _frame(1, 1000, ["6588", "6524", "6524"]) + _frame(4, 2000, ["4188"]))
    assert au.pts == 2000 and d.stats.oversize == 1 and d.stats.dropped_units == 1
    d = H264Depacketizer(max_au_size=8)
    assert _push_all(d, _frame(1, 1000, ["7c85 8801 0203", "7c45 0405 0607 08"])) == []
    assert d.stats.oversize == 1


def test_malformed_and_unsupported_payloads_are_counted() -> None:
    d = H264Depacketizer()
    aus = _push_all(d, _frame(1, 1000, ["18 0009 6588"]) + _frame(2, 2000, ["19 0000"])
                    + _frame(3, 3000, ["7c"]) + _frame(4, 4000, [""]) + _frame(5, 5000, ["6588"]))
    assert [a.pts for a in aus] == [5000]
    assert d.stats.malformed == 3 and d.stats.unsupported == 1


def test_packetizer_bytes_single_and_fu_a_across_seq_wrap() -> None:
    pk = H264Packetizer(96, 0x11223344, mtu=18, start_seq=65535)
    packets = pk.packetize(avcc_join([SPS, IDR]), 0x1_0000_0BB8)
    assert packets == [
        bytes.fromhex("8060 ffff 00000bb8 11223344 6742c01e"),
        bytes.fromhex("8060 0000 00000bb8 11223344 7c 85 8884 0001"),
        bytes.fromhex("8060 0001 00000bb8 11223344 7c 05 0203 0405"),
        bytes.fromhex("80e0 0002 00000bb8 11223344 7c 45 0607"),
    ]
    assert pk.seq == 3
    assert pk.packetize(avcc_join([bytes.fromhex("0910"), bytes.fromhex("4188")]), 3003) == [
        bytes.fromhex("80e0 0003 00000bbb 11223344 4188")]  # AUD skipped
    assert pk.packetize(b"", 0) == []


def test_round_trip_many_sizes() -> None:
    pk = H264Packetizer(96, 1, mtu=100)
    d = H264Depacketizer()
    frames = [avcc_join([SPS, PPS, b"\x65" + bytes(range(256)) * 3]),
              avcc_join([b"\x41\x9a" + bytes(88)]), avcc_join([b"\x41\x9a" + bytes(87)]),
              avcc_join([b"\x41\x80" + bytes(5), b"\x41\x20" + bytes(500)])]
    out: list[AccessUnit] = []
    for i, f in enumerate(frames):
        for p in pk.packetize(f, 3000 * i):
            assert len(p) <= 100
            out += d.push(RtpPacket.parse(p))
    assert [a.data for a in out] == frames
    assert [a.keyframe for a in out] == [True, False, False, False]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_loss_and_reordering_never_raise_or_corrupt(data: st.DataObject) -> None:
    frames = [[b"\x06\x05\x01\x02", b"\x65\x88" + bytes(range(200))],
              [b"\x41\x9a" + bytes(50), b"\x41\x24" + bytes(120)],
              [b"\x41\x9a" + bytes(10)], [b"\x41\x9a\x01" * 90]]
    pk = H264Packetizer(96, 1, mtu=60, start_seq=65530)
    packets = [p for i, f in enumerate(frames)
               for p in pk.packetize(avcc_join(f), 0xFFFFFF00 + 3000 * i)]
    kept = data.draw(st.lists(st.sampled_from(packets), max_size=len(packets) + 4))
    d = H264Depacketizer()
    out: list[AccessUnit] = []
    for p in kept:
        out += d.push(RtpPacket.parse(p))
    # No flush(): a frame still open at the end may have lost its tail unseen.
    for au in out:
        i = ((au.pts - 0xFFFFFF00) % (1 << 32)) // 3000
        nals = [bytes(n) for n in avcc_split(au.data)]
        original = frames[i]
        assert nals == original[len(original) - len(nals):]  # at most a leading SEI missing
        assert nals[-1][0] & 0x1F in (1, 5)


@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.booleans(),
                          st.binary(max_size=30)), max_size=20))
def test_random_payloads_never_raise(items: list[tuple[int, int, bool, bytes]]) -> None:
    d = H264Depacketizer()
    for seq, ts, marker, payload in items:
        d.push(RtpPacket(96, seq, ts, 1, marker, payload))
    d.flush()


def _encode_h264(options: dict[str, str], n: int = 30) -> tuple[list[bytes], int]:
    """Encode FFmpeg's testsrc with PyAV; return AVCC access units (AUD dropped)."""
    src = av.open("testsrc=size=320x240:rate=25", format="lavfi")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 320, 240, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.options = options
    aus: list[bytes] = []
    slices = 0
    frames = []
    for i, frame in enumerate(src.decode(video=0)):
        if i == n:
            break
        frames.append(frame.reformat(format="yuv420p"))
    src.close()
    for frame in [*frames, None]:
        for pkt in enc.encode(frame):
            nals = [x for x in annexb_split(bytes(pkt)) if x[0] & 0x1F != 9]
            slices = max(slices, sum(1 for x in nals if x[0] & 0x1F in (1, 5)))
            aus.append(avcc_join(nals))
    return aus, slices


@pytest.mark.parametrize("options,min_slices", [
    ({"preset": "ultrafast", "tune": "zerolatency"}, 1),
    ({"preset": "fast", "threads": "1", "x264-params": "slices=4:bframes=2"}, 4),
])
def test_pyav_end_to_end(options: dict[str, str], min_slices: int) -> None:
    aus, slices = _encode_h264(options)
    assert len(aus) == 30 and slices >= min_slices
    pk = H264Packetizer(96, 0xABCDEF, mtu=1200, start_seq=65500)
    d = H264Depacketizer()
    got: list[AccessUnit] = []
    for i, au in enumerate(aus):
        for p in pk.packetize(au, 0xFFFF0000 + 3600 * i):
            got += d.push(RtpPacket.parse(p))
    assert [a.data for a in got] == aus
    dec = av.CodecContext.create("h264", "r")
    frames = []
    for a in got:
        frames += dec.decode(av.Packet(avcc_to_annexb(a.data)))
    frames += dec.decode(None)
    assert len(frames) == 30
    assert all((f.width, f.height) == (320, 240) for f in frames)
    assert got[0].keyframe and d.sps is not None and d.pps is not None


def test_parameter_sets_with_their_own_timestamp_join_the_next_frame() -> None:
    params = _frame(1, 1000, ["18 0004 6742c01e 0004 68ce3c80"])
    idr = _frame(2, 4000, ["6588 01"])
    (au,) = _push_all(H264Depacketizer(), params + idr)
    assert au.pts == 4000 and au.nal_types == (7, 8, 5) and au.keyframe


def read_capture(name: str) -> list[bytes]:
    """RTP packets captured from FFmpeg's RTP muxer: 2-byte length, then the datagram."""
    from pathlib import Path
    data = (Path(__file__).parent.parent / "data" / name).read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + size])
        pos += 2 + size
    return out


def test_ffmpeg_capture_stap_a_fu_a_b_frames() -> None:
    """x264 with 4 slices, B-frames, AUD, via FFmpeg's RTP muxer (STAP-A and FU-A)."""
    packets = [RtpPacket.parse(p) for p in read_capture("rtp_ffmpeg_h264.bin")]
    assert [bytes(p) for p in packets] == read_capture("rtp_ffmpeg_h264.bin")
    d = H264Depacketizer()
    aus: list[AccessUnit] = []
    for p in packets:
        aus += d.push(p)
    assert len(aus) == 10 and d.stats.lost == 0 and d.stats.dropped_units == 0
    assert [a.keyframe for a in aus] == [True] + [False] * 4 + [True] + [False] * 4
    assert all(a.nal_types.count(5) + a.nal_types.count(1) == 4 for a in aus)
    assert 9 not in aus[0].nal_types and aus[0].nal_types[:2] == (7, 8)
    assert sorted(a.pts - aus[0].pts for a in aus) == [3600 * i for i in range(10)]
    assert d.sps is not None and d.pps is not None
    dec = av.CodecContext.create("h264", "r")
    frames = []
    for a in aus:
        frames += dec.decode(av.Packet(avcc_to_annexb(a.data)))
    frames += dec.decode(None)
    assert len(frames) == 10 and all((f.width, f.height) == (320, 240) for f in frames)


# -- access units that arrive whole (FLV/RTMP) --------------------------------------

def _prefixed(size: int, *nals: bytes) -> bytes:
    return b"".join(len(n).to_bytes(size, "big") + n for n in nals)


def test_whole_units_give_what_rtp_gives() -> None:
    """The same NAL units by RTP and whole (with an AUD, 2-byte lengths) make one unit."""
    by_rtp = _push_all(H264Depacketizer(), [STAP_A, FU_START, FU_MIDDLE, FU_END])
    d = H264Depacketizer()
    au = d.push_avcc(_prefixed(2, bytes.fromhex("0910"), SPS, PPS, IDR), 3000, length_size=2)
    assert [au] == by_rtp
    assert au is not None and au.data == bytes.fromhex(
        "00000004 6742c01e 00000004 68ce3c80 0000000b 65 8884 0001 0203 0405 0607")
    assert d.sps == SPS and d.pps == PPS and d.params_changed and d.stats.units == 1


def test_whole_units_of_parameter_sets_lead_the_next_one() -> None:
    d = H264Depacketizer()
    assert d.push_avcc(_prefixed(4, SPS, PPS), 0) is None
    au = d.push_avcc(bytearray(_prefixed(4, bytes.fromhex("4188"))), 3600)
    assert au is not None and au.data == _prefixed(4, SPS, PPS, bytes.fromhex("4188")) and not au.keyframe


def test_malformed_whole_units_are_dropped_and_counted() -> None:
    d = H264Depacketizer()
    assert d.push_avcc(_prefixed(4, IDR)[:-1], 0) is None  # length past the end
    assert d.push_avcc(b"\x00\x00\x00", 1) is None  # a length cut short
    assert d.stats.malformed == 2 and d.stats.dropped_units == 2
    d = H264Depacketizer(max_nals=1)
    assert d.push_avcc(_prefixed(4, IDR, IDR), 2) is None and d.stats.oversize == 1
    (au,) = [d.push_avcc(_prefixed(1, bytes.fromhex("6588")), 3, length_size=1)]
    assert au is not None and au.keyframe and au.pts == 3
    with pytest.raises(ValueError):
        d.push_avcc(b"", 0, length_size=5)


def test_out_of_band_parameter_sets_are_tracked_not_sent() -> None:
    d = H264Depacketizer()
    d.set_params([SPS, b"", PPS, IDR])
    assert (d.sps, d.pps, d.params_changed) == (SPS, PPS, True)
    au = d.push_avcc(_prefixed(4, IDR), 0)
    assert au is not None and au.data == _prefixed(4, IDR)


@given(st.binary(max_size=80), st.integers(1, 4))
def test_any_whole_unit_gives_a_unit_or_none(data: bytes, length_size: int) -> None:
    d = H264Depacketizer()
    for pts in range(2):
        au = d.push_avcc(data, pts, length_size=length_size)
        if au is not None:
            assert avcc_split(au.data) and au.pts == pts


def test_packetizer_refuses_an_mtu_without_room_for_a_fragment() -> None:
    with pytest.raises(ValueError):
        H264Packetizer(96, 1, mtu=14)
    assert H264Packetizer(96, 1, mtu=15).packetize(_prefixed(4, bytes.fromhex("65 0102 0304")), 0) == [
        bytes.fromhex("8060 0000 00000000 00000001 7c 85 01"),
        bytes.fromhex("8060 0001 00000000 00000001 7c 05 02"),
        bytes.fromhex("8060 0002 00000000 00000001 7c 05 03"),
        bytes.fromhex("80e0 0003 00000000 00000001 7c 45 04")]


def test_one_byte_fragments_are_cut_at_the_piece_bound() -> None:
    """FU-A fragments of one byte each: 8 MiB of them (the byte limit) were
    8 million views kept, ~1.6 GB. Past MAX_PIECES_PER_AU the NAL is dropped."""
    import tracemalloc

    from hub.media.rtp_nal import MAX_PIECES_PER_AU

    d = H264Depacketizer()
    n = 3 * MAX_PIECES_PER_AU
    start, middle = bytes.fromhex("7c85 88"), bytes.fromhex("7c05 01")
    read = memoryview(start + middle * n)
    units: list[int] = []
    tracemalloc.start()
    try:
        d.feed(0, 1000, False, read[:3], lambda pts, data, key: units.append(pts))
        for seq in range(1, n + 1):
            d.feed(seq, 1000, False, read[3 * seq:3 * seq + 3], lambda pts, data, key: units.append(pts))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 256 * 1024, held
    assert d.stats.oversize == 1 and not units


def test_a_unit_keeps_a_bounded_amount_of_reads_alive() -> None:
    """A publisher ends each RTSP/TCP read with one fragment (one byte) of
    a NAL that never ends, the rest of the read padding: each fragment,
    kept as a view, kept its whole read. Past MAX_HELD_PER_AU bytes of
    reads the unit so far is let go."""
    import tracemalloc

    from hub.media.rtp_nal import MAX_HELD_PER_AU

    d = H264Depacketizer()
    units: list[int] = []
    pad = 64 * 1024
    tracemalloc.start()
    try:
        for seq in range(800):  # 51 MiB of reads
            read = bytes(pad) + (bytes.fromhex("7c85 88") if seq == 0 else bytes.fromhex("7c05 01"))
            d.feed(seq, 1000, False, memoryview(read)[pad:], lambda pts, data, key: units.append(pts))
            del read
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < MAX_HELD_PER_AU + 2 * pad + 256 * 1024, held  # was all 51 MiB
    assert d.stats.oversize >= 1 and not units


def test_units_without_a_picture_keep_copies_not_the_message() -> None:
    """A unit of SEI alone stays for the next one (some cameras send them
    so); from push_avcc its NAL was a view of the whole message, which an
    access unit delimiter (not counted: it is dropped) can make 8 MiB: 511
    such messages held 4 GiB. What stays is copied."""
    import tracemalloc

    d = H264Depacketizer()
    big = 1024 * 1024
    tracemalloc.start()
    try:
        for pts in range(30):  # 30 MiB of messages
            msg = _prefixed(4, bytes((0x09,)) + bytes(big), bytes.fromhex("0605 01"))
            assert d.push_avcc(msg, pts) is None
            del msg
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2 * big, held  # was all 30 MiB
    au = d.push_avcc(_prefixed(4, IDR), 31)
    assert au is not None and au.nal_types == (6,) * 30 + (5,)
