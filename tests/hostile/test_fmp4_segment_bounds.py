"""Frozen timestamps made the fMP4 segmenter hold a publisher's stream without end.

A part closes when its time reaches the part length and a segment at a
keyframe past its length (or `MAX_SEGMENT`): time the publisher gives.
Every frame with the same decode time never ages either, so the open part
took every frame, for as long as the stream played — in the shard, for
LL-HLS and fMP4 HLS players and for every recording of the path (1,000
frames of 40 KB: 38 MiB held, no part). Now a part is cut at
`MAX_HELD_BYTES` of media held (32 MiB), and where the segment's bytes are
kept (HLS), the segment with it.

Sans-IO: the segmenter fed the entries a shard's ring gives it.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest

from hub.media.mp4 import Fmp4Part, Fmp4Segment, Fmp4Segmenter
from hub.media.mp4.segmenter import MAX_HELD_BYTES
from tests.shard.ingest_helpers import PPS, SPS, tracks

FRAME = 40_000


def _held(seg: Fmp4Segmenter) -> int:
    pending = sum(len(s.data) for s in seg._vsamples)
    parts = sum(len(c) for p in seg._parts for c in p.chunks)
    return pending + parts


@pytest.mark.parametrize("segment_bytes", [True, False], ids=["hls", "recording"])
def test_frozen_timestamps_hold_a_bounded_part(segment_bytes: bool) -> None:
    video = dataclasses.replace(tracks()[0], sps=SPS, pps=PPS)
    seg = Fmp4Segmenter([video], part_target=0.2, segment_target=2.0, segment_bytes=segment_bytes)
    events: list[Fmp4Part | Fmp4Segment] = []
    largest = 0
    for i in range(1000):  # ~38 MiB, every frame at time 0, a keyframe every 25
        frame = struct.pack(">I", FRAME + 1) + b"\x65" + i.to_bytes(4, "big") * (FRAME // 4)
        events += seg.push(0, 0, 0, i % 25 == 0, frame)
        largest = max(largest, _held(seg))
    assert largest <= MAX_HELD_BYTES + FRAME + 5, largest
    assert any(isinstance(e, Fmp4Part) for e in events)
    assert any(isinstance(e, Fmp4Segment) for e in events) == segment_bytes
