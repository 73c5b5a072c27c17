"""Recorded files indexed, and time ranges joined into one MP4 (synthetic streams)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import NotFound, ProtocolError
from hub.media.mp4.boxes import child, iter_boxes
from hub.media.mp4.fragment import Moof
from hub.media.mp4.playback import (FilePiece, Mp4FileIndex, Mp4Range, RecordedFile, index_file,
                                     join_range)
from hub.media.mp4.recorder import RecordingFile
from hub.media.mp4.segmenter import Fmp4Part, Fmp4Segmenter
from hub.media.stream_desc import TrackDesc
from tests.media.mp4.test_init import aac, h264
from tests.media.mp4.test_segmenter import video

T0 = 1_700_000_000.0


def av_entries(seconds: int, start: int = 0) -> list[tuple[int, int, int, bool, bytes]]:
    """25 fps video (keyframe every second) and 48 kHz AAC, in time order."""
    out = []
    a = start * 48000 // 90000
    for v in video(seconds * 25, start=start):
        out.append(v)
        while a * 90000 < (v[2] + 3600) * 48000:
            out.append((1, a, a, True, b"\x21" + a.to_bytes(4, "big")))
            a += 1024
    return out


def record(sessions: list[tuple[list[TrackDesc], list[tuple[int, int, int, bool, bytes]], float]],
           segment_target: float = 2.0) -> tuple[dict[str, bytes], list[RecordedFile]]:
    """Files as a recorder writes them: init + the parts of one segment each,
    times from 0. A session is (tracks, entries, wall clock of its first entry)."""
    files: dict[str, bytes] = {}
    recorded = []
    for tracks, entries, wall in sessions:
        seg = Fmp4Segmenter(tracks, segment_target=segment_target)
        writer = RecordingFile(seg.init, seg.tracks)
        chunks: list[bytes] = []
        origin = None
        for ev in [e for entry in entries for e in seg.push(*entry)] + seg.finish():
            if isinstance(ev, Fmp4Part):
                chunks += [bytes(c) for c in writer.part(ev)]
                continue
            origin = ev.start if origin is None else origin
            name = f"{wall + ev.start - origin:.3f}.mp4"
            files[name] = b"".join(chunks)
            assert writer.size == len(files[name]) and writer.duration == pytest.approx(ev.duration)
            writer = RecordingFile(seg.init, seg.tracks)
            chunks = []
            recorded.append(RecordedFile(name, wall + ev.start - origin, index_bytes(files[name])))
    return files, recorded


def index_bytes(data: bytes) -> Mp4FileIndex:
    return index_file(lambda offset, n: data[offset:offset + n], len(data))


def build(rng: Mp4Range, files: dict[str, bytes]) -> bytes:
    return b"".join(p if isinstance(p, bytes) else files[p.path][p.offset:p.offset + p.length]
                    for p in rng.pieces)


def test_index_of_a_recorded_file() -> None:
    files, (rec, _) = record([([h264(), aac()], av_entries(4), T0)])
    ix = rec.index
    assert ix.timescales == {1: 90000, 2: 48000} and ix.reference == 1
    assert len(ix.fragments) == 10 and not ix.truncated
    assert [f.independent for f in ix.fragments] == [True, False, False, False, False] * 2
    assert [ix.base(f) for f in ix.fragments] == [i * 18000 for i in range(10)]
    assert all(ix.duration_of(f) == 18000 for f in ix.fragments)
    assert ix.duration == 2.0
    data = files[rec.path]
    assert data.startswith(ix.ftyp + ix.moov)
    for f in ix.fragments:
        assert data[f.offset:f.offset + len(f.moof)] == f.moof
        assert data[f.offset + len(f.moof) + 4:f.offset + len(f.moof) + 8] == b"mdat"
    assert ix.fragments[-1].offset + ix.fragments[-1].size == len(data)


def test_every_prefix_indexes_what_is_complete() -> None:
    # A recorder killed mid-write leaves a prefix: what is whole still plays.
    files, (rec, *_) = record([([h264()], video(50), T0)])
    data = files[rec.path]
    ends = [f.offset + f.size for f in rec.index.fragments]
    head = len(rec.index.ftyp) + len(rec.index.moov)
    for n in range(len(data) + 1):
        read = data[:n]
        if n < head:
            with pytest.raises(ProtocolError):
                index_file(lambda o, k: read[o:o + k], n)
            continue
        ix = index_file(lambda o, k: read[o:o + k], n)
        assert len(ix.fragments) == sum(1 for e in ends if e <= n)
        assert ix.truncated == (n not in ends and n != head)


def test_trailing_garbage_is_left_out_or_refused() -> None:
    files, (rec, *_) = record([([h264()], video(50), T0)])
    data = files[rec.path]
    ix = index_file(lambda o, k: (data + b"\x00\x00\x10")[o:o + k], len(data) + 3)
    assert ix.truncated and len(ix.fragments) == len(rec.index.fragments)
    with pytest.raises(ProtocolError):
        bad = data + b"\x00\x00\x00\x04junk"
        index_file(lambda o, k: bad[o:o + k], len(bad))


@settings(deadline=None)  # timing is not what these check; the machine is shared
@given(st.binary(max_size=400))
def test_any_bytes_index_or_protocol_error(data: bytes) -> None:
    try:
        index_file(lambda o, k: data[o:o + k], len(data))
    except ProtocolError:
        pass


_FILES, (_REC, *_) = record([([h264(), aac()], av_entries(1), T0)], segment_target=0.4)
_SAMPLE = _FILES[_REC.path]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SAMPLE) - 1), st.integers(0, 255)), min_size=1,
                max_size=3))
def test_damaged_file_indexes_or_protocol_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SAMPLE)
    for pos, value in edits:
        data[pos] = value
    try:
        index_file(lambda o, k: bytes(data[o:o + k]), len(data))
    except ProtocolError:
        pass


def test_join_two_files_of_one_session() -> None:
    files, recs = record([([h264(), aac()], av_entries(6), T0)])
    assert [r.start - T0 for r in recs] == [0.0, 2.0, 4.0]
    rng = join_range(recs, T0 + 1.1, T0 + 3.5)
    # From the keyframe at 1.0 to the end of the fragment running at 3.5.
    assert (rng.start - T0, round(rng.end - T0, 6)) == (1.0, 3.6)
    out = build(rng, files)
    assert len(out) == rng.length
    boxes = list(iter_boxes(out))
    assert [b.kind for b in boxes[:3]] == [b"ftyp", b"moov", b"sidx"]
    moofs = [Moof.parse(b) for b in boxes if b.kind == b"moof"]
    assert [m.mfhd.sequence for m in moofs] == list(range(1, 14))
    video_times = [t.tfdt.base_time for m in moofs for t in m.trafs if t.tfhd.track_id == 1
                   if t.tfdt is not None]
    assert video_times == [i * 18000 for i in range(13)]  # from 0, no gap across the files
    assert b"".join(bytes(b) for b in boxes[3:]) == b"".join(
        p if isinstance(p, bytes) else files[p.path][p.offset:p.offset + p.length]
        for p in rng.pieces[2:])
    mehd = child(child(boxes[1], b"mvex"), b"mehd")
    # ms: the audio of the last part runs 5 ms past its last video frame
    assert struct.unpack(">Q", bytes(mehd.payload[4:]))[0] == 2605
    sidx = bytes(boxes[2].payload)
    assert sidx[:4] == b"\x01\x00\x00\x00"  # version 1
    track, timescale, earliest, first_offset, _, count = struct.unpack_from(">IIQQHH", sidx, 4)
    assert (track, timescale, earliest, first_offset, count) == (1, 90000, 0, 0, 3)
    refs = [struct.unpack_from(">III", sidx, 32 + 12 * i) for i in range(count)]
    # One subsegment per second (a keyframe each), SAP type 1, sizes covering the rest.
    assert [(d, sap) for _, d, sap in refs] == [(90000, 0x90000000), (90000, 0x90000000),
                                                (54000, 0x90000000)]
    assert sum(size for size, _, _ in refs) == len(out) - boxes[3].offset
    # Where each fragment is, for an HLS VOD playlist over this one MP4.
    assert rng.init_length == boxes[2].offset
    assert [(f.offset, f.length) for f in rng.fragments] == [
        (b.offset, b.size + boxes[i + 1].size) for i, b in enumerate(boxes) if b.kind == b"moof"]
    assert [f.independent for f in rng.fragments] == [True, False, False, False, False] * 2 + [
        True, False, False]
    assert [(o, n, round(d, 6)) for o, n, d in rng.vod_segments(2.0)] == [
        (rng.fragments[0].offset, sum(f.length for f in rng.fragments[:10]), 2.0),
        (rng.fragments[10].offset, sum(f.length for f in rng.fragments[10:]), 0.6)]
    assert [round(d, 6) for _, _, d in rng.vod_segments(0.5)] == [1.0, 1.0, 0.6]


def test_range_slices_for_http_range() -> None:
    files, recs = record([([h264(), aac()], av_entries(4), T0)])
    rng = join_range(recs, T0, T0 + 10)
    whole = build(rng, files)
    head = [p for p in rng.pieces[:2] if isinstance(p, bytes)]
    for first, stop in [(0, 10), (5, rng.length), (100, 101), (0, rng.length), (rng.length - 7, rng.length),
                        (len(head[0]) - 2, len(head[0]) + len(head[1]) + 30)]:
        got = b"".join(p if isinstance(p, bytes) else files[p.path][p.offset:p.offset + p.length]
                       for p in rng.slice(first, stop))
        assert got == whole[first:stop]
    assert all(isinstance(p, FilePiece) or len(p) > 0 for p in rng.slice(0, rng.length))


def test_a_new_session_continues_where_the_last_ended() -> None:
    # Two publishing sessions with a 10 s gap between them; the second's
    # timestamps start again from 0.
    files, recs = record([([h264()], video(100), T0), ([h264()], video(100), T0 + 14)])
    assert [r.start - T0 for r in recs] == [0.0, 2.0, 14.0, 16.0]
    rng = join_range(recs, T0 + 3, T0 + 15)
    moofs = [Moof.parse(b) for b in iter_boxes(build(rng, files)) if b.kind == b"moof"]
    times = [m.trafs[0].tfdt.base_time for m in moofs if m.trafs[0].tfdt is not None]
    assert times == [i * 18000 for i in range(len(times))]
    assert len(times) == 10  # 3-4 s of the first session, 14-15 s of the second


def test_other_parameter_sets_end_the_range() -> None:
    other = h264()
    other.sps = bytes.fromhex("6742c00dd90141fb0110000003001000000303c0f142a480")
    other.pps = bytes.fromhex("68ce3c80")
    files, recs = record([([h264()], video(100), T0), ([other], video(100), T0 + 4)])
    rng = join_range(recs, T0, T0 + 20)
    assert round(rng.end - T0, 6) == 4.0
    with pytest.raises(NotFound):
        join_range(recs, T0 + 30, T0 + 40)
    with pytest.raises(NotFound):
        join_range([], T0, T0 + 1)


def test_range_starts_at_a_keyframe() -> None:
    files, recs = record([([h264()], video(100, gop=50), T0)])  # keyframes every 2 s
    rng = join_range(recs, T0 + 1.5, T0 + 1.7)
    assert (rng.start - T0, round(rng.end - T0, 6)) == (0.0, 1.8)
    first = next(Moof.parse(b) for b in iter_boxes(build(rng, files)) if b.kind == b"moof")
    assert first.trafs[0].truns[0].samples[0].flags == 0x02000000
