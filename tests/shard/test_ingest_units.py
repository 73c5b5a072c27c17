"""Access units that arrive whole (RTMP's way in) against the same frames
pushed as RTP (RTSP's way in): the ring entries must be the same ones.

The frames are synthetic: H.264 with AUDs, in-band SPS/PPS, B-frames (PTS
going back) and FU-A-sized slices; AAC frames; G.711 passed through. The
RTP side is made with our own packetisers, so the two sessions see the same
units by two roads.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from hub.media.access_unit import avcc_join
from hub.media.rtp_aac import AacPacketizer
from hub.media.rtp_h264 import H264Packetizer
from hub.media.stream_desc import FLAG_MARKER, FLAG_RTP_PAYLOAD
from hub.shard.ingest import IngestSession
from hub.shard.streams import StreamTable

from .ingest_helpers import AUD, PPS, SPS, Clock, go_live, run, session, tracks

FRAME = 3600  # 25 fps at 90 kHz


def nal(first: int, size: int, seed: int) -> bytes:
    return bytes((first,)) + bytes((seed + i) % 251 for i in range(size - 1))


# Decode order, with PTS in frame units: I0 P3 B1 B2 P6 B4 B5 (two slices in P6).
VIDEO = [(0, [AUD, SPS, PPS, nal(0x65, 3000, 1)]),
         (3, [AUD, nal(0x41, 1800, 2)]),
         (1, [AUD, nal(0x01, 500, 3)]),
         (2, [AUD, nal(0x01, 400, 4)]),
         (6, [AUD, nal(0x41, 2000, 5), nal(0x41, 90, 6)]),
         (4, [AUD, nal(0x01, 300, 7)]),
         (5, [AUD, nal(0x01, 20, 8)])]
AAC = [bytes((0x21, k)) + bytes(200 + k) for k in range(6)]
PCMA = [bytes((0xD5 ^ k,)) * 160 for k in range(3)]

# (track, index) in arrival order: the tracks interleave as a source sends them.
ORDER = [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 1), (0, 3), (1, 3), (0, 4),
         (1, 4), (2, 2), (0, 5), (1, 5), (0, 6)]
TICK = 0.01  # seconds between arrivals

V_TS0 = 0xFFFFF000  # RTP timestamps start just below the 32-bit wrap
A_TS0 = 123456
G_TS0 = 7


def _rtp(pt: int, seq: int, ts: int, payload: bytes) -> bytes:
    return struct.pack(">BBHII", 0x80, 0x80 | pt, seq, ts & 0xFFFFFFFF, 0x0A0B0C0D) + payload


def push_as_rtp(ingest: IngestSession, clock: Clock) -> None:
    video = H264Packetizer(96, 1, mtu=1200, start_seq=65530)
    audio = AacPacketizer(97, 2)
    sinks = [ingest.rtp_sinks(i)[0] for i in range(3)]
    for n, (track, i) in enumerate(ORDER):
        clock.now = n * TICK
        if track == 0:
            pts, nals = VIDEO[i]
            packets = video.packetize(avcc_join(nals), V_TS0 + pts * FRAME)
            assert len(packets) > 1 or len(nals) == 2  # big slices go as FU-A
        elif track == 1:
            packets = audio.packetize(AAC[i], A_TS0 + 1024 * i)
        else:
            packets = [_rtp(8, 100 + i, G_TS0 + 160 * i, PCMA[i])]
        for p in packets:
            sinks[track](p)


def push_as_units(ingest: IngestSession, clock: Clock) -> None:
    for n, (track, i) in enumerate(ORDER):
        clock.now = n * TICK
        if track == 0:
            pts, nals = VIDEO[i]
            ingest.push_au(0, avcc_join(nals), pts * FRAME)
        elif track == 1:
            ingest.push_au(1, AAC[i], 1024 * i)
        else:
            ingest.push_au(2, PCMA[i], 160 * i)


def test_units_make_the_entries_rtp_makes() -> None:
    async def main(streams: StreamTable) -> None:
        by_rtp: list[Any] = []
        by_units: list[Any] = []
        for path, feed, out in (("/rtp", push_as_rtp, by_rtp), ("/units", push_as_units, by_units)):
            clock = Clock()
            ingest, _ = session(streams, path, clock=clock)
            ring = go_live(ingest)
            feed(ingest, clock)
            stream = ingest.stream
            assert stream is not None
            out += [ring.entries(), stream.tracks, stream.sdp, stream.version]
        assert by_units == by_rtp
        entries = by_units[0]
        assert len(entries) == len(ORDER)
        video = [e for e in entries if e[0] == 0]
        # AVCC without the AUDs; the SPS/PPS stay in the keyframe that carried them.
        assert [e[5] for e in video] == [avcc_join(nals[1:]) for _, nals in VIDEO]
        assert [e[2] for e in video] == [True] + [False] * 6
        assert [e[3] for e in video] == [pts * FRAME for pts, _ in VIDEO]  # first arrived at the start
        dts = [e[4] for e in video]
        assert dts == sorted(set(dts)) and dts[-1] <= video[-1][3]  # rising decode times
        audio = [e for e in entries if e[0] == 1]
        # First AAC frame arrived 10 ms after the start: 480 ticks at 48 kHz.
        assert [(e[3], e[4], e[2], e[5]) for e in audio] == [(480 + 1024 * k, 480 + 1024 * k, False, AAC[k])
                                                            for k in range(6)]
        g711 = [e for e in entries if e[0] == 2]
        assert [(e[1], e[3], e[5]) for e in g711] == [(FLAG_RTP_PAYLOAD | FLAG_MARKER, 160 + 160 * k, PCMA[k])
                                                     for k in range(3)]
        # In-band SPS/PPS: both roads re-described the stream once.
        assert by_units[3] == 2 and by_units[1][0].sps == SPS and by_units[1][0].width == 640

    run(main)


def test_a_source_dts_is_kept() -> None:
    """RTMP knows its decode times (timestamp) and PTS (plus composition time)."""

    async def main(streams: StreamTable) -> None:
        clock = Clock()
        ingest, _ = session(streams, clock=clock)
        ring = go_live(ingest)
        for k, (pts, nals) in enumerate(VIDEO):
            clock.now = k * 0.04
            ingest.push_au(0, avcc_join(nals), pts * FRAME + 2 * FRAME, k * FRAME)
        video = ring.entries()
        # The first decode time maps to its arrival (the start): dts 0, pts 2 frames later.
        assert [(e[3], e[4]) for e in video] == [(pts * FRAME + 2 * FRAME, k * FRAME)
                                                 for k, (pts, _) in enumerate(VIDEO)]

    run(main)


def test_other_nal_length_sizes_parameter_only_units_and_garbage() -> None:
    def prefixed(size: int, *nals: bytes) -> bytes:
        return b"".join(len(n).to_bytes(size, "big") + n for n in nals)

    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        ring = go_live(ingest)
        stream = ingest.stream
        assert stream is not None
        idr = nal(0x65, 40, 9)
        ingest.push_au(0, prefixed(2, AUD, SPS, PPS), 0, length_size=2)  # a unit of parameter sets only
        assert stream.version == 2 and ring.entries() == []
        ingest.push_au(0, bytearray(prefixed(2, idr)), 0, length_size=2)
        ingest.push_au(0, prefixed(4, idr)[:-1], FRAME)  # truncated: dropped, counted
        ingest.push_au(0, prefixed(1, nal(0x41, 9, 1)), 2 * FRAME, length_size=1)
        assert ring.entries() == [(0, 0, True, 0, 0, avcc_join([SPS, PPS, idr])),
                                        (0, 0, False, 2 * FRAME, 2 * FRAME, avcc_join([nal(0x41, 9, 1)]))]
        depack = ingest.ingests[0]._depack
        assert depack is not None and depack.stats.malformed == 1
        assert ingest.stats().units_in == 4 and ingest.stats().entries == 2

    run(main)


def test_audio_only_units_are_all_start_points() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, _ = session(streams)
        ring = go_live(ingest, [dataclasses.replace(tracks()[1], index=0)])
        ingest.push_au(0, AAC[0], 0)
        ingest.push_au(0, AAC[1], 1024)
        assert [(e[2], e[3]) for e in ring.entries()] == [(True, 0), (True, 1024)]

    run(main)
