"""A source whose time line jumps is followed without the jump.

GStreamer's RTSP server (the firmware of many cameras) restarts a shared
media's time line when another client plays it from the start: every
client's RTP timestamps go back to where they started. A route pulling
such a camera passed the jump on: when another client started, the
route's players saw its audio go back ~6.5 s and its video frozen at one
DTS for as long (found with two routes to `tests/e2e/gst_camera.py`; the
end-to-end check is in tests/e2e/test_other_clients.py). Now a step
back of more than MAX_STEP_BACK, or ahead of more than MAX_LEAP, moves the
track's time line so the next unit lands one step after the unit before
it, or as long after it as the clock says passed (the track keeps its
place against the clock); B-frames and a source that pauses keep their
timestamps.
"""

from __future__ import annotations

import struct

from hub.media.access_unit import avcc_join
from hub.media.rtp_aac import AacPacketizer
from hub.media.rtp_h264 import H264Packetizer
from hub.shard.ingest import IngestSession
from hub.shard.rtp_in import MAX_LEAP
from hub.shard.streams import StreamTable

from .ingest_helpers import PPS, SPS, Clock, Ring, go_live, run, session, tracks

FRAME = 3600  # 25 fps at 90 kHz
AAC_FRAME = 1024  # at 48 kHz
V_TS0 = 2266819133  # where GStreamer's camera started, and went back to
A_TS0 = 1096810883
G_TS0 = 4000000000


def idr(k: int) -> bytes:
    return avcc_join([SPS, PPS, bytes((0x65, k & 0xFF)) + bytes(300)])


def p_slice(k: int) -> bytes:
    return avcc_join([bytes((0x41, k & 0xFF)) + bytes(100)])


class Source:
    """A camera sending H.264 at 25 fps and AAC at ~47 fps in real time
    (both RTP), its time line moved by `shift` seconds from `jump_at` on."""

    def __init__(self, ingest: IngestSession, clock: Clock, g711: bool = False) -> None:
        self.clock = clock
        self.video = H264Packetizer(96, 1, mtu=1200)
        self.audio = AacPacketizer(97, 2)
        self.sinks = [ingest.rtp_sinks(i)[0] for i in range(3 if g711 else 2)]

    def run(self, seconds: float, jump_at: float | None = None, shift: float = 0.0,
            pause: tuple[float, float] | None = None) -> None:
        events = [(k * 0.04, 0, k) for k in range(int(seconds / 0.04))]
        events += [(k * AAC_FRAME / 48000, 1, k) for k in range(int(seconds * 48000 / AAC_FRAME))]
        if len(self.sinks) > 2:  # G.711, passed through: 20 ms packets
            events += [(k * 0.02, 2, k) for k in range(int(seconds / 0.02))]
        for at, track, k in sorted(events):
            if pause is not None and pause[0] <= at < pause[0] + pause[1]:
                continue  # the source sends nothing: its timestamps go on counting
            moved = shift if jump_at is not None and at >= jump_at else 0.0
            self.clock.now = at
            if track == 0:
                ts = V_TS0 + k * FRAME + round(moved * 90000)
                unit = idr(k) if k % 25 == 0 else p_slice(k)
                for p in self.video.packetize(unit, ts & 0xFFFFFFFF):
                    self.sinks[0](p)
            elif track == 1:
                ts = A_TS0 + k * AAC_FRAME + round(moved * 48000)
                for p in self.audio.packetize(bytes((0x21, k & 0xFF)) + bytes(50), ts & 0xFFFFFFFF):
                    self.sinks[1](p)
            else:
                ts = (G_TS0 + k * 160 + round(moved * 8000)) & 0xFFFFFFFF
                self.sinks[2](struct.pack(">BBHII", 0x80, 0x88, k & 0xFFFF, ts, 7) + bytes(160))


def entries(ring: Ring, track: int) -> list[tuple[int, int]]:
    """(pts, dts) of the track's entries."""
    return [(e[3], e[4]) for e in ring.entries() if e[0] == track]


def live(streams: StreamTable, path: str, g711: bool = False) -> tuple[IngestSession, Ring, Source]:
    clock = Clock()
    ingest, _ = session(streams, path, clock=clock)
    ring = go_live(ingest, tracks()[:3 if g711 else 2])
    return ingest, ring, Source(ingest, clock, g711)


def assert_continuous(times: list[int], step: int, rate: int, slack: float = 0.02) -> None:
    """Rising, and no step beyond `step` ticks give or take `slack` seconds."""
    deltas = [b - a for a, b in zip(times, times[1:])]
    assert all(d > 0 for d in deltas), [d for d in deltas if d <= 0][:5]
    assert max(deltas) <= step + slack * rate, max(deltas)


def test_a_time_line_that_goes_back_is_followed_without_the_jump() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, ring, src = live(streams, "/cam/back", g711=True)
        src.run(10.0, jump_at=7.0, shift=-7.0)  # back to where it started, 7 s in
        video, audio, g711 = entries(ring, 0), entries(ring, 1), entries(ring, 2)
        assert len(video) == 250 and len(audio) == 468 and len(g711) == 500
        assert_continuous([d for _, d in video], FRAME, 90000)
        assert_continuous([p for p, _ in audio], AAC_FRAME, 48000)
        assert_continuous([p for p, _ in g711], 160, 8000)  # passed through, not depacketised
        assert all(p == d for p, d in video)  # no false B-frames
        # The tracks still share one time line: the last frames arrived together.
        assert abs(video[-1][0] / 90000 - 249 * 0.04) < 0.02
        assert abs(audio[-1][0] / 48000 - 467 * AAC_FRAME / 48000) < 0.02
        assert abs(g711[-1][0] / 8000 - 499 * 0.02) < 0.02
        assert [t.stats.jumps for t in ingest.ingests] == [1, 1, 1]

    run(main)


def test_a_time_line_that_leaps_ahead_is_followed_without_the_leap() -> None:
    async def main(streams: StreamTable) -> None:
        ingest, ring, src = live(streams, "/cam/ahead")
        src.run(6.0, jump_at=3.0, shift=3600.0)
        video, audio = entries(ring, 0), entries(ring, 1)
        assert_continuous([d for _, d in video], FRAME, 90000)
        assert_continuous([p for p, _ in audio], AAC_FRAME, 48000)
        assert abs(video[-1][0] / 90000 - 5.96) < 0.02
        assert [t.stats.jumps for t in ingest.ingests] == [1, 1]

    run(main)


def test_a_source_that_pauses_keeps_its_timestamps() -> None:
    """A pause shorter than MAX_LEAP is the source's: its gap stays as sent.
    A longer one counts as a leap, and lands as long after the unit before
    it as the clock says passed: the same."""
    async def main(streams: StreamTable) -> None:
        for path, pause, jumps in (("/cam/pause", 5.0, 0), ("/cam/long", MAX_LEAP + 2.0, 1)):
            ingest, ring, src = live(streams, path)
            src.run(pause + 4.0, pause=(2.0, pause))
            video = entries(ring, 0)
            gaps = [b[1] - a[1] for a, b in zip(video, video[1:])]
            assert sorted(gaps)[-1] == round((pause + 0.04) * 90000) and sorted(gaps)[-2] == FRAME, path
            assert [t.stats.jumps for t in ingest.ingests] == [jumps, jumps], path

    run(main)


def test_units_whose_decode_times_jump_are_followed_too() -> None:
    """RTMP's way in: a source DTS that goes back moves PTS with it."""
    async def main(streams: StreamTable) -> None:
        clock = Clock()
        ingest, _ = session(streams, "/rtmp/back", clock=clock)
        ring = go_live(ingest, tracks()[:1])
        for k in range(100):
            clock.now = k * 0.04
            dts = (k if k < 60 else k - 60) * FRAME  # back to 0 at 2.4 s
            ingest.push_au(0, idr(k) if k % 25 == 0 else p_slice(k), dts + 2 * FRAME, dts)
        video = entries(ring, 0)
        assert_continuous([d for _, d in video], FRAME, 90000)
        assert all(p - d == 2 * FRAME for p, d in video)  # the composition offset kept
        assert ingest.ingests[0].stats.jumps == 1

    run(main)


def test_b_frames_are_not_a_jump() -> None:
    """PTS going back by a few frames (decode order I P B B) is reordering,
    at 25 fps as at 1 fps (where two frames back are 2 s)."""
    async def main(streams: StreamTable) -> None:
        for path, fps in (("/cam/b25", 25), ("/cam/b1", 1)):
            frame = 90000 // fps
            clock = Clock()
            ingest, _ = session(streams, path, clock=clock)
            ring = go_live(ingest, tracks()[:1])
            video = H264Packetizer(96, 1, mtu=1200)
            sink = ingest.rtp_sinks(0)[0]
            order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]
            for n, k in enumerate(order * 3):
                clock.now = n / fps
                base = (n // len(order)) * 10
                unit = idr(n) if n % len(order) == 0 else p_slice(n)
                for p in video.packetize(unit, (V_TS0 + (base + k) * frame) & 0xFFFFFFFF):
                    sink(p)
            pts = [p for p, _ in entries(ring, 0)]
            assert pts == [(base + k) * frame for base in (0, 10, 20) for k in order][:len(pts)], path
            assert len(pts) >= 29 and ingest.ingests[0].stats.jumps == 0, path

    run(main)
