"""The fMP4 segmenter on synthetic streams: where parts and segments are cut."""

from __future__ import annotations

from typing import Iterable

import pytest

from hub.errors import ProtocolError
from hub.media.mp4.boxes import iter_boxes
from hub.media.mp4.fragment import SAMPLE_NON_SYNC, SAMPLE_SYNC, Moof
from hub.media.mp4.segmenter import MAX_PART_SAMPLES, Fmp4Part, Fmp4Segment, Fmp4Segmenter
from hub.media.stream_desc import TrackDesc
from tests.media.mp4.test_init import aac, h264

Event = Fmp4Part | Fmp4Segment


def frame(i: int, key: bool) -> bytes:
    return b"\x00\x00\x00\x03" + (b"\x65" if key else b"\x41") + i.to_bytes(2, "big")


def video(n: int, step: int = 3600, gop: int = 25, start: int = 0,
          cto: int = 0) -> list[tuple[int, int, int, bool, bytes]]:
    return [(0, start + i * step + cto, start + i * step, i % gop == 0, frame(i, i % gop == 0))
            for i in range(n)]


def feed(seg: Fmp4Segmenter, entries: Iterable[tuple[int, int, int, bool, bytes]],
         now: float | None = None) -> list[Event]:
    out: list[Event] = []
    for track, pts, dts, key, data in entries:
        out += seg.push(track, pts, dts, key, data, now)
    return out


def parts(events: list[Event]) -> list[Fmp4Part]:
    return [e for e in events if isinstance(e, Fmp4Part)]


def segments(events: list[Event]) -> list[Fmp4Segment]:
    return [e for e in events if isinstance(e, Fmp4Segment)]


def moof_of(part: Fmp4Part) -> Moof:
    return Moof.from_bytes(b"".join(part.chunks)[:len(part.chunks[0]) - 8])


def test_parts_and_segments_at_25_fps() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=2.0)
    # A part is complete when the frame after it arrives: frame 5 closes part 0.
    assert feed(seg, video(5)) == []
    (first,) = feed(seg, video(6)[5:])
    assert isinstance(first, Fmp4Part)
    assert (first.number, first.sequence, first.index, first.independent, first.start,
            first.duration) == (0, 0, 0, True, 0.0, 0.2)
    events = feed(seg, video(125)[6:]) + seg.finish()
    events.insert(0, first)
    segs = segments(events)
    assert [(s.sequence, s.start, s.duration, len(s.parts)) for s in segs] == [
        (0, 0.0, 2.0, 10), (1, 2.0, 2.0, 10), (2, 4.0, 1.0, 5)]
    assert all(p.duration == 0.2 for p in parts(events))
    # Keyframes every second: parts 0 and 5 of each segment start with one.
    assert [p.index for p in segs[0].parts if p.independent] == [0, 5]
    assert [p.number for p in parts(events)] == list(range(25))
    # Each segment event comes right after its last part.
    kinds = ["S" if isinstance(e, Fmp4Segment) else "p" for e in events]
    assert "".join(kinds) == "p" * 10 + "S" + "p" * 10 + "S" + "p" * 5 + "S"
    assert seg.part_target == 0.2 and seg.target_duration == 2 and seg.ended


def test_fragment_contents() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=2.0)
    events = feed(seg, video(30, cto=7200))
    p0, p1 = parts(events)[:2]
    m = moof_of(p1)
    assert m.mfhd.sequence == 2
    (traf,) = m.trafs
    assert traf.tfhd.track_id == 1 and traf.tfdt is not None and traf.tfdt.base_time == 5 * 3600
    assert [(s.duration, s.size, s.flags, s.cto) for s in traf.truns[0].samples] == [
        (3600, 7, SAMPLE_NON_SYNC, 7200)] * 5
    assert moof_of(p0).trafs[0].truns[0].samples[0].flags == SAMPLE_SYNC
    # The samples are the pushed bytes themselves, after moof and mdat header.
    assert p1.chunks[1:] == tuple(frame(i, False) for i in range(5, 10))
    assert p1.size == sum(len(c) for c in p1.chunks)


def test_segment_bytes_are_styp_and_its_parts() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=1.0)
    events = feed(seg, video(26))
    (s,) = segments(events)
    assert bytes(s.chunks[0])[4:8] == b"styp"
    assert s.chunks[1:] == tuple(c for p in parts(events) for c in p.chunks)
    assert s.size == sum(len(c) for c in s.chunks)
    assert [b.kind for b in iter_boxes(b"".join(s.chunks))] == [b"styp"] + [b"moof", b"mdat"] * 5


@pytest.mark.parametrize("step, ticks", [(3600, 18000), (3000, 18000), (3003, 18018), (3750, 18750)])
def test_part_target_is_whole_frames(step: int, ticks: int) -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2)
    assert seg.part_target == 0.2  # before any frame duration is known
    events = feed(seg, video(60, step=step, gop=1000))
    assert seg.part_target == ticks / 90000
    assert {round(p.duration * 90000) for p in parts(events)} == {ticks}


def test_segment_waits_for_a_keyframe_past_the_target() -> None:
    seg = Fmp4Segmenter([h264()], segment_target=2.0)
    events = feed(seg, video(250, gop=35))  # keyframes every 1.4 s
    assert [s.duration for s in segments(events)][:3] == [2.8, 2.8, 2.8]
    assert seg.target_duration == 3
    assert all(s.independent for s in segments(events))


def test_waits_for_the_first_keyframe() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2)
    events = feed(seg, video(40, gop=25, start=-10 * 3600)[10:])  # joins at frame 10
    assert seg.current is not None and seg.current.start == 15 * 3600 / 90000
    assert parts(events)[0].start == 15 * 3600 / 90000


def test_segment_cut_without_keyframe_after_max() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=2.0)
    events = feed(seg, video(70, step=90000, gop=1000))  # 1 fps, one keyframe only
    (s,) = segments(events)
    assert s.duration == 60.0
    assert seg.current is not None and not seg.current.independent


def test_audio_with_video() -> None:
    seg = Fmp4Segmenter([h264(), aac()], part_target=0.2, segment_target=2.0)
    entries: list[tuple[int, int, int, bool, bytes]] = [(1, 0, 0, True, b"\x21early")]
    a = 1024
    for i, v in enumerate(video(26)):
        entries.append(v)
        t = v[2] * 48000 // 90000
        while a < t + 1920:  # audio frames of this 40 ms
            if a != 1024 * 5:  # one frame lost
                entries.append((1, a, a, True, b"\x21" + a.to_bytes(4, "big")))
            a += 1024
    events = feed(seg, entries)
    p0 = parts(events)[0]
    video_traf, audio_traf = moof_of(p0).trafs
    assert video_traf.tfhd.track_id == 1 and audio_traf.tfhd.track_id == 2
    assert audio_traf.tfdt is not None and audio_traf.tfdt.base_time == 1024
    samples = audio_traf.truns[0].samples
    # Durations come from the next frame's time (2048 across the lost one);
    # the part's last frame gets the nominal 1024.
    assert [s.duration for s in samples] == [1024] * 3 + [2048] + [1024] * (len(samples) - 4)
    # The next part's audio starts at its first frame's own time.
    next_audio = moof_of(parts(events)[1]).trafs[1]
    assert next_audio.tfdt is not None
    assert next_audio.tfdt.base_time == audio_traf.tfdt.base_time + sum(s.duration or 0 for s in samples)
    assert seg.tracks[0].track_id == 1 and seg.tracks[1].track_id == 2


def test_audio_only_cut_by_duration() -> None:
    seg = Fmp4Segmenter([TrackDesc(3, "audio", "MPEG4-GENERIC", 97, 48000, asc=bytes.fromhex("1188"))],
                        part_target=0.2, segment_target=2.0)
    assert seg.part_target == 9216 / 48000  # nine AAC frames
    events = feed(seg, [(3, i * 1024, i * 1024, False, b"\x21\x00") for i in range(300)])
    segs = segments(events)
    assert [len(s.parts) for s in segs] == [11, 11, 11]
    assert segs[0].duration == 94 * 1024 / 48000  # the first frame at or past 2 s
    assert all(p.independent for p in parts(events))
    assert seg.tracks[0].track_id == 1


def test_audio_piles_up_only_to_a_bound() -> None:
    seg = Fmp4Segmenter([h264(), aac()])
    feed(seg, video(1))
    feed(seg, [(1, i * 1024, i * 1024, True, b"\x21") for i in range(MAX_PART_SAMPLES + 10)])
    assert seg.dropped == 10


def test_window_reset_and_discontinuity_sequence() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=1.0, window=2)
    feed(seg, video(51))  # two segments
    closed = seg.reset([h264()])  # a new publisher: the open segment closes
    assert [s.sequence for s in segments(closed)] == [2]
    assert seg.init_version == 1
    events = feed(seg, video(51, start=10 ** 6))  # its times start elsewhere
    s3, s4 = segments(events)
    assert (s3.sequence, s3.discontinuity, s3.init_version) == (3, True, 1)
    assert (s4.discontinuity, s4.init_version) == (False, 1)
    assert [s.sequence for s in seg.segments] == [3, 4]
    assert seg.discontinuity_sequence == 0
    feed(seg, video(26, start=10 ** 6 + 51 * 3600))
    assert [s.sequence for s in seg.segments] == [4, 5]
    assert seg.discontinuity_sequence == 1  # segment 3 left the window
    # History holds metadata only, never the media bytes.
    assert all(not hasattr(p, "chunks") for s in seg.segments for p in s.parts)


def test_program_date_time_follows_media_time() -> None:
    seg = Fmp4Segmenter([h264()], segment_target=1.0)
    events = feed(seg, video(51), now=1_700_000_000.0)
    assert [s.program_date_time for s in segments(events)] == [1_700_000_000.0, 1_700_000_001.0]
    assert Fmp4Segmenter([h264()]).current is None


def test_finish_closes_and_ignores_later_entries() -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=2.0)
    feed(seg, video(12))
    events = seg.finish()
    p, s = events
    assert isinstance(p, Fmp4Part) and isinstance(s, Fmp4Segment)
    assert p.duration == 0.08 and s.duration == 12 * 0.04  # the last frame lasts as long as the one before
    assert feed(seg, video(30)) == [] and seg.finish() == []


def test_ignores_other_tracks_and_empty_entries() -> None:
    seg = Fmp4Segmenter([h264(), TrackDesc(1, "audio", "PCMA", 8, 8000)])
    assert seg.skipped == [] and len(seg.tracks) == 1
    assert feed(seg, [(1, 0, 0, True, b"\xd5"), (7, 0, 0, True, b"x"), (0, 0, 0, True, b"")]) == []
    assert seg.current is None


def test_needs_a_track_it_can_carry() -> None:
    with pytest.raises(ProtocolError):
        Fmp4Segmenter([TrackDesc(0, "audio", "PCMA", 8, 8000)])
    seg = Fmp4Segmenter([TrackDesc(0, "video", "H264", 96, 90000), aac()])
    assert seg.video is None and seg.audio is not None and seg.audio.track_id == 1
    assert seg.skipped == [(0, "H.264 track without SPS/PPS")]


@pytest.mark.parametrize("kwargs", [dict(part_target=0.0), dict(part_target=3.0, segment_target=2.0),
                                    dict(window=0)])
def test_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Fmp4Segmenter([h264()], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("restart", [0, 40 * 3600 + 11 * 90000])  # back to 0, or 11 s ahead
def test_a_broken_time_line_starts_a_discontinuity(restart: int) -> None:
    seg = Fmp4Segmenter([h264()], part_target=0.2, segment_target=2.0)
    feed(seg, video(40))
    events = feed(seg, video(30, start=restart))
    first, *rest = segments(events)
    assert (first.sequence, first.duration, first.discontinuity) == (0, 1.6, False)
    assert seg.current is not None and seg.current.discontinuity and seg.current.sequence == 1
    assert seg.current.start == restart / 90000 and seg.init_version == 0
    (s,) = segments(feed(seg, video(51, start=restart)[30:]))
    assert (s.sequence, s.discontinuity, s.duration) == (1, True, 2.0)
