"""Real decoders read what the fMP4 writer, segmenter and recording join make.

Input: clips made by the ffmpeg CLI (testsrc2 + sine, GOP 1 s, with and
without B-frames, H.264 and H.265) turned into ring entries; output checked
with ffprobe and decoded frame by frame with PyAV.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.logging
import pytest

from hub.media.hls import VodSegment, render_ll_playlist, render_vod_playlist
from hub.media.mp4 import Fmp4Part, Fmp4Segment, Fmp4Segmenter
from hub.media.mp4.playback import RecordedFile, join_range
from hub.media.mp4.recorder import RecordingFile
from tests.media.mp4.clips import AUDIO_RATE, FPS, Clip, make_ts, read_ts
from tests.media.mp4.test_playback import index_bytes

pytestmark = pytest.mark.e2e

SECONDS = 5
T0 = 1_700_000_000.0
CASES = [("h264", 0), ("h264", 2), ("h265", 2)]


@dataclass
class Written:
    clip: Clip
    bframes: int
    stream: Path  # init + every segment (styp + parts): what an HLS player reads
    files: list[RecordedFile]  # init + the parts of one segment each: recordings
    segments: list[Fmp4Segment]
    hls: Path  # index.m3u8 (LL-HLS, ended) with init0.mp4, N.m4s and partN.m4s beside it


@pytest.fixture(scope="module", params=CASES, ids=[f"{c}-bf{b}" for c, b in CASES])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    codec, bframes = request.param
    folder = tmp_path_factory.mktemp(f"{codec}{bframes}")
    make_ts(folder / "in.ts", codec, SECONDS, bframes=bframes)
    clip = read_ts(folder / "in.ts", codec)
    seg = Fmp4Segmenter(clip.tracks, part_target=0.2, segment_target=2.0)
    stream = [seg.init]
    recording = RecordingFile(seg.init, seg.tracks)
    parts: list[bytes] = []
    files: list[RecordedFile] = []
    segments: list[Fmp4Segment] = []
    events: list[Fmp4Part | Fmp4Segment] = []
    for e in clip.entries:
        events += seg.push(e.track, e.pts, e.dts, e.keyframe, e.data)
    events += seg.finish()
    (folder / "init0.mp4").write_bytes(seg.init)
    for ev in events:
        if isinstance(ev, Fmp4Part):
            parts.append(b"".join(recording.part(ev)))
            (folder / f"part{ev.number}.m4s").write_bytes(b"".join(ev.chunks))
            continue
        segments.append(ev)
        stream.append(b"".join(ev.chunks))
        (folder / f"{ev.sequence}.m4s").write_bytes(b"".join(ev.chunks))
        path = folder / f"rec{ev.sequence}.mp4"
        data = b"".join(parts)
        parts = []
        recording = RecordingFile(seg.init, seg.tracks)
        path.write_bytes(data)
        files.append(RecordedFile(str(path), T0 + ev.start, index_bytes(data)))
    (folder / "stream.mp4").write_bytes(b"".join(stream))
    (folder / "index.m3u8").write_text(render_ll_playlist(seg))
    return Written(clip, bframes, folder / "stream.mp4", files, segments, folder / "index.m3u8")


def ffprobe(path: Path | str) -> dict[str, Any]:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                        str(path)], capture_output=True, text=True, timeout=60, check=True)
    assert r.stderr == ""
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def decode_all(path: Path | str) -> tuple[list[Fraction], list[int], list[str]]:
    """(video frame times in presentation order, audio samples per frame, decoder errors)."""
    times: list[Fraction] = []
    audio: list[int] = []
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # PyAV passes no FFmpeg log on without a level
    with av.logging.Capture() as logs:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            for packet in c.demux():
                for fr in packet.decode():
                    if isinstance(fr, av.VideoFrame):
                        assert fr.pts is not None and v.time_base is not None
                        times.append(fr.pts * v.time_base)
                    elif isinstance(fr, av.AudioFrame):
                        audio.append(fr.samples)
    av.logging.set_level(level)
    errors = [msg for level, _, msg in logs if level <= av.logging.ERROR]
    return times, audio, errors


def video_entries(clip: Clip) -> list[tuple[int, int]]:
    return [(e.pts, e.dts) for e in clip.entries if e.track == 0]


def test_ffprobe_reads_codec_size_and_duration(written: Written) -> None:
    info = ffprobe(written.stream)
    video, audio = info["streams"]
    codec = written.clip.tracks[0].codec
    assert video["codec_name"] == ("hevc" if codec == "H265" else "h264")
    assert video["codec_tag_string"] == ("hvc1" if codec == "H265" else "avc1")
    assert (video["width"], video["height"]) == (320, 240)
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", AUDIO_RATE, 1)
    # ffprobe's video duration runs from decode time 0 to the last frame's end.
    entries = video_entries(written.clip)
    assert abs(float(video["duration"]) - (entries[0][1] / 90000 + len(entries) / FPS)) <= 1 / FPS
    # Each recorded segment file is playable on its own, from 0, as long as it says.
    for rec, seg in zip(written.files, written.segments):
        info = ffprobe(rec.path)
        assert float(info["format"]["start_time"]) < 0.1
        assert abs(float(info["streams"][0]["duration"]) - seg.duration) <= 1 / FPS
        times, _, errors = decode_all(rec.path)
        assert errors == [] and len(times) == round(seg.duration * FPS)


def test_every_frame_decodes_in_order(written: Written) -> None:
    times, audio, errors = decode_all(written.stream)
    assert errors == []
    entries = video_entries(written.clip)
    assert len(times) == len(entries)
    # Presentation order: strictly increasing, exactly the pushed pts.
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times == sorted(Fraction(pts, 90000) for pts, _ in entries)
    # Audio before the first keyframe is not written; everything after is.
    first = next(i for i, e in enumerate(written.clip.entries) if e.track == 0)
    assert audio == [1024] * sum(1 for e in written.clip.entries[first:] if e.track == 1)


def test_packets_keep_decode_order_and_composition_offsets(written: Written) -> None:
    with av.open(str(written.stream)) as c:
        v = c.streams.video[0]
        got = [(int(p.pts or 0), int(p.dts or 0), p.is_keyframe) for p in c.demux(v) if p.size]
    want = [(e.pts, e.dts, e.keyframe) for e in written.clip.entries if e.track == 0]
    assert [(p - d, k) for p, d, k in got] == [(p - d, k) for p, d, k in want]
    assert [d for _, d, _ in got] == sorted(d for _, d, _ in got)
    # With B-frames the packets' pts go back now and then (decode order).
    pts = [p for p, _, _ in got]
    assert (pts != sorted(pts)) == (written.bframes > 0)


def test_recording_range_decodes_and_seeks(written: Written, tmp_path: Path) -> None:
    assert len(written.files) == 3  # 2 s, 2 s, 1 s
    start = written.files[0].start  # wall clock of the first keyframe
    rng = join_range(written.files, start + 1.1, start + 3.5)  # across the first two files
    assert (round(rng.start - start, 6), round(rng.end - start, 6)) == (1.0, 3.6)
    out = tmp_path / "range.mp4"
    with open(out, "wb") as f:
        for p in rng.pieces:
            if isinstance(p, bytes):
                f.write(p)
            else:
                with open(p.path, "rb") as src:
                    src.seek(p.offset)
                    f.write(src.read(p.length))
    assert out.stat().st_size == rng.length
    times, _, errors = decode_all(out)
    assert errors == []
    assert len(times) == round(2.6 * FPS)  # every frame from 1.0 s to 3.6 s
    assert times == sorted(times)
    assert abs(float(ffprobe(out)["streams"][0]["duration"]) - 2.6) <= 1 / FPS
    # A seek to the middle (1.5 s into the output) lands on the keyframe before it.
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.time_base is not None
        c.seek(int(Fraction(3, 2) / v.time_base), stream=v)
        first = next(c.decode(v))
        assert first.pts is not None
        landed = float(first.pts * v.time_base)
        assert first.key_frame and 1.0 <= landed <= 1.5, landed
        rest = [fr.pts * v.time_base for fr in c.decode(v) if fr.pts is not None]
    assert rest[-1] == times[-1]  # and decodes on to the end


def test_hls_players_read_the_playlists(written: Written, tmp_path: Path) -> None:
    # FFmpeg's HLS demuxer: the LL playlist's segments (it skips the parts) ...
    times, _, errors = decode_all(written.hls)
    assert errors == [] and len(times) == len(video_entries(written.clip))
    assert times == sorted(times)
    # ... and what an LL client fetches, the init and then the parts, in order.
    parts = sorted(written.hls.parent.glob("part*.m4s"), key=lambda p: int(p.stem[4:]))
    joined = tmp_path / "parts.mp4"
    joined.write_bytes(b"".join(p.read_bytes() for p in [written.hls.parent / "init0.mp4", *parts]))
    assert decode_all(joined)[0] == times
    # A VOD playlist over a recorded range: byte ranges of the one joined MP4.
    start = written.files[0].start
    rng = join_range(written.files, start, start + 10)
    out = tmp_path / "range.mp4"
    out.write_bytes(b"".join(p if isinstance(p, bytes) else
                             Path(p.path).read_bytes()[p.offset:p.offset + p.length] for p in rng.pieces))
    vod = tmp_path / "vod.m3u8"
    vod.write_text(render_vod_playlist([
        VodSegment("range.mp4", seconds, byterange=(length, offset), map_uri="range.mp4",
                   map_range=(rng.init_length, 0))
        for offset, length, seconds in rng.vod_segments(2.0)]))
    vod_times, _, errors = decode_all(vod)
    assert errors == [] and len(vod_times) == len(times)
    assert vod_times == sorted(vod_times) and vod_times[0] < Fraction(1, 10)
