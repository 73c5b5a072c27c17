"""Recording files: init once, then each part with decode times from 0."""

from __future__ import annotations

import pytest

from hub.media.mp4.boxes import iter_boxes
from hub.media.mp4.fragment import Moof, fragment_bases, shift_fragment
from hub.media.mp4.index import index_file
from hub.media.mp4.recorder import NTP_UNIX_OFFSET, RecordingFile, ntp_to_unix, prft
from hub.media.mp4.segmenter import Fmp4Part, Fmp4Segmenter
from tests.media.mp4.test_fragment import EXPECTED_MOOF, _fragment
from tests.media.mp4.test_init import aac, h264
from tests.media.mp4.test_playback import T0, av_entries


def test_shift_fragment_moves_only_decode_times() -> None:
    head = bytes(_fragment()[0])
    assert fragment_bases(head) == {1: 0x0102030405, 2: 48000}
    shifted = shift_fragment(head, {1: -0x0102030000, 2: -50000})
    assert fragment_bases(shifted) == {1: 0x405, 2: 0}  # clamped at 0
    want = bytearray(head)
    want[60:68] = (0x405).to_bytes(8, "big")  # video tfdt
    want[160:168] = bytes(8)  # audio tfdt
    assert shifted == want
    assert head[:len(EXPECTED_MOOF)] == EXPECTED_MOOF  # the original is untouched
    assert shift_fragment(head, {}) == head


def test_file_starts_at_zero_and_shares_sample_buffers() -> None:
    seg = Fmp4Segmenter([h264(), aac()], segment_target=2.0)
    events = [e for entry in av_entries(3, start=900_000) for e in seg.push(*entry)]
    parts = [e for e in events if isinstance(e, Fmp4Part)]
    rec = RecordingFile(seg.init, seg.tracks)
    first = rec.part(parts[0])
    assert first[0] is seg.init
    assert first[2:] == list(parts[0].chunks[1:]) and all(
        a is b for a, b in zip(first[2:], parts[0].chunks[1:]))
    later = rec.part(parts[1])
    assert later[1:] == list(parts[1].chunks[1:])
    data = b"".join(bytes(c) for c in first + later)
    assert rec.size == len(data) and rec.duration == pytest.approx(0.4)
    moofs = [Moof.parse(b) for b in iter_boxes(data) if b.kind == b"moof"]
    bases = [{t.tfhd.track_id: t.tfdt.base_time for t in m.trafs if t.tfdt} for m in moofs]
    # Video started at 10 s and audio with it; both now count from 0, in step.
    assert bases[0][1] == 0 and bases[1][1] == 18000
    assert bases[1][2] - bases[0][2] == fragment_bases(parts[1].chunks[0])[2] - fragment_bases(
        parts[0].chunks[0])[2]
    assert [m.mfhd.sequence for m in moofs] == [1, 2]


def test_prft_bytes() -> None:
    # 2023-11-14T22:13:20.5Z, decode time 3600 of track 1.
    box = prft(1, 1_700_000_000.5, 3600)
    ntp = (1_700_000_000 + NTP_UNIX_OFFSET) << 32 | 1 << 31
    assert box == (b"\x00\x00\x00\x20prft\x01\x00\x00\x00" + (1).to_bytes(4, "big")
                   + ntp.to_bytes(8, "big") + (3600).to_bytes(8, "big"))
    assert ntp_to_unix(ntp) == 1_700_000_000.5


def test_first_part_carries_its_wall_clock_in_a_prft() -> None:
    seg = Fmp4Segmenter([h264(), aac()], segment_target=2.0)
    events = [e for entry in av_entries(3, start=900_000) for e in seg.push(*entry, now=T0)]
    parts = [e for e in events if isinstance(e, Fmp4Part)]
    # The segmenter dates each part from its anchor (the first keyframe's arrival).
    assert [p.program_date_time for p in parts[:3]] == [T0, T0 + 0.2, T0 + 0.4]
    rec = RecordingFile(seg.init, seg.tracks)
    first = rec.part(parts[1])  # a file may start at any part
    assert first[0] is seg.init and first[1] == prft(1, T0 + 0.2, 0)
    assert b"prft" not in b"".join(bytes(c) for c in rec.part(parts[2]))
    data = b"".join(bytes(c) for c in first)
    ix = index_file(lambda offset, n: data[offset:offset + n], len(data))
    assert ix.wall == (1, 0, pytest.approx(T0 + 0.2)) and ix.wall_start == pytest.approx(T0 + 0.2)
    # Without a wall clock there is no prft, and the index says so.
    seg2 = Fmp4Segmenter([h264()], segment_target=2.0)
    parts2 = [e for entry in av_entries(1) if entry[0] == 0 for e in seg2.push(*entry)
              if isinstance(e, Fmp4Part)]
    data2 = b"".join(bytes(c) for c in RecordingFile(seg2.init, seg2.tracks).part(parts2[0]))
    ix2 = index_file(lambda offset, n: data2[offset:offset + n], len(data2))
    assert b"prft" not in data2 and ix2.wall is None and ix2.wall_start is None
