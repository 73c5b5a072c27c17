"""A joining player's GOP, packetised apart: numbered into the live packets,
same SSRC/timestamps/payload type, the live state untouched."""

from __future__ import annotations

import struct

from hub.media.access_unit import avcc_join
from hub.media.rtp import RtpPacket
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.media.webrtc.stream_out import WebRtcStreamOut

SPS = bytes.fromhex("6742c01e8c8d40")
PPS = bytes.fromhex("68ce3c80")
DESC = StreamDesc(1, "/live/x", "ring", 1, "", [TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS),
                                                TrackDesc(1, "audio", "PCMA", 8, 8000)])
IDR = avcc_join([bytes([0x65]) + bytes(range(256)) * 10])  # 2561 bytes: FU-A over 3 packets
P = avcc_join([bytes([0x41]) + bytes(300)])


def _seq(p: bytes) -> int:
    return int(struct.unpack_from(">H", p, 2)[0])


def test_replay_runs_into_the_live_numbering() -> None:
    out = WebRtcStreamOut(DESC)
    live = [out.packetize(0, IDR, 0, keyframe=True), out.packetize(1, b"\xd5" * 160, 0, marker=True),
            out.packetize(0, P, 3600)]
    before = (out.tracks[0].next_seq, out.tracks[1].next_seq, out.units)
    replayed = out.replay([(0, IDR, 0, True, False), (1, b"\xd5" * 160, 0, False, True), (0, P, 3600, False, False)])
    assert (out.tracks[0].next_seq, out.tracks[1].next_seq, out.units) == before  # nothing of the live state moved
    assert [(t, k, len(p)) for t, k, p in replayed] == [(0, True, 5), (1, False, 1), (0, False, 1)]  # SPS+PPS+3 FU-A
    video = [p for t, _k, ps in replayed if t == 0 for p in ps]
    assert [_seq(p) for p in video] == [(before[0] - 6 + i) & 0xFFFF for i in range(6)]
    assert _seq(replayed[1][2][0]) == (before[1] - 1) & 0xFFFF
    # Byte for byte the live packets but for their numbers.
    live_video = [p for ps in (live[0], live[2]) for p in ps]
    for a, b in zip(video, live_video):
        pa, pb = RtpPacket.parse(a), RtpPacket.parse(b)
        assert (pa.ssrc, pa.timestamp, pa.payload_type, pa.marker, pa.payload) == \
               (pb.ssrc, pb.timestamp, pb.payload_type, pb.marker, pb.payload)
    # Not kept for NACKs: the history still holds the live packets at those numbers.
    assert out.lookup(0, _seq(live_video[0])) == live_video[0]


def test_payload_type_of_the_shared_packets_follows_the_players() -> None:
    out = WebRtcStreamOut(DESC)
    assert RtpPacket.parse(out.packetize(0, P, 0)[0]).payload_type == 96
    out.set_payload_type(0, 108)
    out.set_payload_type(1, 8)
    out.set_payload_type(5, 1)  # no such track: ignored
    assert RtpPacket.parse(out.packetize(0, P, 3600)[0]).payload_type == 108
    assert RtpPacket.parse(out.replay([(0, P, 0, False, False)])[0][2][0]).payload_type == 108
