"""A video unit with a bad NAL length stopped a stream's TS segmenter.

The TS muxer turns each AVCC access unit into Annex B and raised on a NAL
length past the unit's end; the exception left the segmenter's pump, the
stream detached that tap with a logged traceback, and its TS playlist
froze while players kept polling it (until the segmenter was reaped, 60 s
after the last request, and started again). The fMP4 segmenters (LL-HLS,
recordings) copied such a unit into their fragments, for decoders to
choke on.

No ingest writes such a unit today: the RTP depacketisers (RTSP
publishers, pulls, relays, WHIP) write each NAL's length themselves, and
an RTMP publisher sending one is closed ("bad NAL length", see
tests/rtmp/test_rtmp_hostile.py), its units re-framed by `push_avcc`
anyway. So these tests write the unit into the ring as an ingest would
(`Stream.write`). Now every segmenter drops it, counts it, logs one
WARNING line (no traceback) and goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
from pathlib import Path

import pytest

from hub.media.mp4.index import index_file
from hub.media.stream_desc import TrackDesc
from hub.shard.hls import HlsManager
from hub.shard.hls_ts import TsSegmenter
from hub.shard.record import RecordManager
from hub.shard.stream import Stream
from hub.store.recordings import RecordRule, RecordTable
from tests.shard.ingest_helpers import PPS, SPS, make_streams, tracks

FPS = 25
SECONDS = 8
BAD_AT = FPS * 3 + 10  # a frame in the middle of the fourth second
#: A NAL length (0x10000) far past the unit's end.
BAD = b"\x00\x01\x00\x00\x41\x00\x00"


def _frame(i: int) -> bytes:
    key = i % FPS == 0
    return struct.pack(">I", 201) + (b"\x65" if key else b"\x41") + bytes(200)


def _video() -> TrackDesc:
    return dataclasses.replace(tracks()[0], sps=SPS, pps=PPS)


async def _write(stream: Stream, n: int) -> None:
    for i in range(n):
        data = BAD if i == BAD_AT else _frame(i)
        stream.write(0, data, i * 3600, i * 3600, i % FPS == 0)
        await asyncio.sleep(0)  # taps run once per loop turn


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    warned = [r for r in caplog.records if "bad NAL lengths" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("variant", ["ts", "fmp4"])
def test_hls_segmenters_drop_the_unit_and_go_on(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                variant: str) -> None:
    caplog.set_level(logging.INFO)

    async def run() -> tuple[int, int, bool]:
        streams = make_streams()
        hls = HlsManager(tmp_path, 1.0)
        stream = streams.publish("/cam/a", "", [_video()], "test", None)
        stream.write(0, _frame(0), 0, 0, True)
        opening = asyncio.get_running_loop().create_task(hls.open(stream, variant))
        await asyncio.sleep(0)
        await _write(stream, FPS * SECONDS)
        await asyncio.wait_for(opening, 5)
        seg = hls.segmenters[(stream.stream_id, variant)]
        attached = seg.pump in stream.taps
        text = (Path((await hls.open(stream, variant))["folder"]) / "index.m3u8").read_text()
        segments = sum(1 for ln in text.splitlines() if ln.startswith("#EXTINF"))
        dropped = seg.dropped if isinstance(seg, TsSegmenter) else seg.malformed
        hls.close()
        streams.close(stream)
        return segments, dropped, attached

    segments, dropped, attached = asyncio.run(run())
    assert attached, "the segmenter was detached"
    assert segments >= SECONDS - 2, segments  # cut every second, past the bad unit
    assert dropped == 1
    _no_traceback(caplog)


def test_a_recording_drops_the_unit_and_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def run() -> tuple[Path, int]:
        streams = make_streams()
        mgr = RecordManager(tmp_path, RecordTable([RecordRule("/cam/", segment=60.0)]), 0, 1)
        streams.on_stream_opened.append(mgr.stream_opened)
        streams.on_stream_closed.append(mgr.stream_closed)
        stream = streams.publish("/cam/a", "", [_video()], "test", None)
        await _write(stream, FPS * SECONDS)
        (rec,) = mgr.recorders.values()
        path, malformed = rec.folder / rec.name, rec.malformed
        streams.close(stream)
        await mgr.aclose()
        return path, malformed

    path, malformed = asyncio.run(run())
    assert malformed == 1
    data = path.read_bytes()
    ix = index_file(lambda offset, n: data[offset:offset + n], len(data))
    assert round(ix.duration) == SECONDS  # the frame before it lasts until the next
    assert BAD not in data
    _no_traceback(caplog)
