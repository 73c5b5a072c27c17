"""RFC 3640 AAC-hbr: hand-built packets, packetiser bytes, fragments, PyAV round trip."""

from __future__ import annotations

import math
import struct

import av
from hypothesis import given, settings, strategies as st

from hub.media.aac import AacConfig
from hub.media.access_unit import AccessUnit
from hub.media.rtp import RtpPacket
from hub.media.rtp_aac import AacDepacketizer, AacPacketizer

TWO_AUS = bytes.fromhex("80e0 0001 00001000 01020304 0020 0028 0018 2100499002 aabbcc")
FRAG_1 = bytes.fromhex("8060 0002 00001c00 01020304 0010 0050 01020304")
FRAG_2 = bytes.fromhex("80e0 0003 00001c00 01020304 0010 0050 050607080910")


def _push_all(d: AacDepacketizer, packets: list[bytes]) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for p in packets:
        out += d.push(RtpPacket.parse(p))
    return out


def test_two_aus_in_one_packet() -> None:
    p = RtpPacket.parse(TWO_AUS)
    assert (p.marker, p.payload_type, p.sequence_number, p.timestamp, p.ssrc) == (
        True, 96, 1, 4096, 0x01020304)
    assert bytes(p) == TWO_AUS
    aus = AacDepacketizer().push(p)
    assert aus == [AccessUnit(4096, bytes.fromhex("2100499002"), True),
                   AccessUnit(5120, bytes.fromhex("aabbcc"), True)]


def test_index_delta_spaces_timestamps() -> None:
    pkt = bytes.fromhex("80e0 0001 00001000 01020304 0020 0018 0019 aabbcc ddeeff")  # delta 1
    aus = _push_all(AacDepacketizer(frame_length=960), [pkt])
    assert [a.pts for a in aus] == [4096, 4096 + 2 * 960]


def test_fragmented_au_reassembled() -> None:
    d = AacDepacketizer()
    (au,) = _push_all(d, [FRAG_1, FRAG_2])
    assert au == AccessUnit(0x1C00, bytes.fromhex("01020304050607080910"), True)


def test_lost_fragment_drops_that_au_only() -> None:
    p1 = bytes.fromhex("8060 0002 00001c00 01020304 0010 0050 0102")
    p3 = bytes.fromhex("80e0 0004 00001c00 01020304 0010 0050 0910")
    nxt = bytes.fromhex("80e0 0005 00002000 01020304 0010 0008 ee")
    d = AacDepacketizer()
    aus = _push_all(d, [p1, p3, nxt])
    assert aus == [AccessUnit(0x2000, b"\xee", True)]
    assert d.stats.lost == 1 and d.stats.dropped_units == 2  # the partial one, the orphan end


def test_lbr_field_widths() -> None:
    pkt = bytes.fromhex("80e0 0001 00000000 00000001 0010 14 0c 0102030405 060708")
    d = AacDepacketizer(size_length=6, index_length=2, index_delta_length=2)
    aus = _push_all(d, [pkt])
    assert [(a.pts, a.data) for a in aus] == [(0, bytes.fromhex("0102030405")), (1024, b"\x06\x07\x08")]


def test_timestamp_wrap_inside_a_packet() -> None:
    pkt = bytes.fromhex("80e0 0001 fffffc00 01020304 0020 0008 0008 aa bb")
    nxt = bytes.fromhex("80e0 0002 00000400 01020304 0010 0008 cc")
    aus = _push_all(AacDepacketizer(), [pkt, nxt])
    assert [a.pts for a in aus] == [0xFFFFFC00, 1 << 32, (1 << 32) + 1024]


def test_malformed_and_interleaved_are_counted() -> None:
    d = AacDepacketizer()
    aus = _push_all(d, [bytes.fromhex("80e0 0001 00000000 00000001 00"),
                        bytes.fromhex("80e0 0002 00000400 00000001 0030 0008"),
                        bytes.fromhex("80e0 0003 00000800 00000001 0011 000800 aa"),
                        bytes.fromhex("80e0 0004 00000c00 00000001 0010 0009 aa"),  # index 1
                        bytes.fromhex("80e0 0005 00001000 00000001 0020 0008 0010 aa"),
                        bytes.fromhex("80e0 0006 00001400 00000001 0010 0008 dd")])
    assert [a.data for a in aus] == [b"\xaa", b"\xdd"]  # first AU of the short packet survives
    assert d.stats.malformed == 4 and d.stats.unsupported == 1


def test_packetizer_bytes_single_and_fragmented() -> None:
    pk = AacPacketizer(97, 0x01020304, start_seq=65535)
    assert pk.packetize(bytes.fromhex("2100499002"), 1024) == [
        bytes.fromhex("80e1 ffff 00000400 01020304 0010 0028 2100499002")]
    small = AacPacketizer(96, 0x01020304, mtu=20, start_seq=2)
    assert small.packetize(bytes.fromhex("01020304050607080910"), 0x1C00) == [
        bytes.fromhex("8060 0002 00001c00 01020304 0010 0050 01020304"),
        bytes.fromhex("8060 0003 00001c00 01020304 0010 0050 05060708"),
        bytes.fromhex("80e0 0004 00001c00 01020304 0010 0050 0910"),
    ]
    assert small.seq == 5 and small.packetize(b"", 0) == []


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_random_loss_and_reordering_never_raise_or_corrupt(data: st.DataObject) -> None:
    frames = [bytes([i]) * (5 + 13 * i) for i in range(8)]
    pk = AacPacketizer(96, 1, mtu=40, start_seq=65533)
    packets = [p for i, f in enumerate(frames) for p in pk.packetize(f, 0xFFFFF000 + 1024 * i)]
    kept = data.draw(st.lists(st.sampled_from(packets), max_size=len(packets) + 3))
    d = AacDepacketizer()
    for p in kept:
        for au in d.push(RtpPacket.parse(p)):
            assert au.data == frames[((au.pts - 0xFFFFF000) % (1 << 32)) // 1024]


@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.booleans(),
                          st.binary(max_size=20)), max_size=20),
       st.integers(1, 16), st.integers(0, 4), st.integers(0, 4))
def test_random_payloads_never_raise(items: list[tuple[int, int, bool, bytes]], size_len: int,
                                     index_len: int, delta_len: int) -> None:
    d = AacDepacketizer(size_length=size_len, index_length=index_len, index_delta_length=delta_len)
    for seq, ts, marker, payload in items:
        d.push(RtpPacket(96, seq, ts, 1, marker, payload))


def test_pyav_round_trip() -> None:
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format = 44100, "stereo", "fltp"
    enc.open()
    cfg = AacConfig.parse(enc.extradata)
    assert (cfg.object_type, cfg.sample_rate, cfg.channels) == (2, 44100, 2)
    frames: list[bytes] = []
    for i in range(20):
        fr = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        tone = struct.pack("<1024f", *(math.sin((i * 1024 + n) * 0.05) * 0.5 for n in range(1024)))
        for plane in fr.planes:
            plane.update(tone)
        fr.sample_rate = 44100
        fr.pts = i * 1024
        frames += [bytes(p) for p in enc.encode(fr)]
    frames += [bytes(p) for p in enc.encode(None)]
    pk = AacPacketizer(97, 5, mtu=200)
    d = AacDepacketizer()
    got: list[AccessUnit] = []
    for i, f in enumerate(frames):
        for p in pk.packetize(f, 1024 * i):
            got += d.push(RtpPacket.parse(p))
    assert [a.data for a in got] == frames
    assert [a.pts for a in got] == [1024 * i for i in range(len(frames))]
    assert max(len(f) for f in frames) > 200  # some frames were fragmented
    dec = av.CodecContext.create("aac", "r")
    dec.extradata = bytes(cfg)
    samples = 0
    for a in got:
        for out in dec.decode(av.Packet(a.data)):
            samples += out.samples
    assert samples >= 1024 * 19



def test_ffmpeg_capture_several_aus_per_packet() -> None:
    """FFmpeg's RTP muxer packs several AAC frames per packet (config 120856E500)."""
    from tests.media.test_rtp_h264 import read_capture
    raw = read_capture("rtp_ffmpeg_aac.bin")
    packets = [RtpPacket.parse(p) for p in raw]
    assert [bytes(p) for p in packets] == raw
    d = AacDepacketizer()
    aus: list[AccessUnit] = []
    for p in packets:
        aus += d.push(p)
    first = packets[0].timestamp
    assert [a.pts - first for a in aus] == [1024 * i for i in range(len(aus))]
    assert len(aus) == 4 + 5 + 5 + 5  # AU-headers-length 64, then 80 bits: 16 bits per AU
    cfg = AacConfig.parse(bytes.fromhex("120856E500"))
    assert (cfg.object_type, cfg.sample_rate, cfg.channels) == (2, 44100, 1)
    dec = av.CodecContext.create("aac", "r")
    dec.extradata = bytes.fromhex("120856E500")
    samples = sum(f.samples for a in aus for f in dec.decode(av.Packet(a.data)))
    assert samples == 1024 * len(aus)
    assert d.stats.malformed == 0 and d.stats.units == 19


def test_a_fragmented_au_keeps_no_reads_alive() -> None:
    """Fragments of one AU (size 8000 in each AU header) carrying one byte,
    or none, each at the end of a read of its own: each fragment kept as a
    view held its whole read (and empty ones never completed the AU), so a
    publisher made us keep every byte it sent. Fragments are copied now."""
    import tracemalloc

    d = AacDepacketizer()
    header = bytes.fromhex("0010") + (8000 << 3).to_bytes(2, "big")
    units: list[int] = []
    tracemalloc.start()
    try:
        for seq in range(400):
            read = bytes(64 * 1024) + header + (b"\x01" if seq % 2 else b"")  # padding, then the packet
            d.feed(seq, 1000, False, memoryview(read)[-len(header) - (seq % 2):],
                   lambda pts, data, key: units.append(pts))
            del read
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1024 * 1024, held  # was 26 MB: every read
    assert not units and d.stats.dropped_units == 0  # still gathering, and bounded
