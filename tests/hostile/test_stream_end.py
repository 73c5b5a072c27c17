"""Defect 11: a stream's end released its ring under a reader still running.

When a publisher closed while its HLS segmenter was live, the shard logged
`ValueError: operation forbidden on released memoryview object` from
`HlsSegmenter.pump` -> `RingReader.read` ("in-process reader failed;
detaching it"): the last writes had scheduled the in-process readers for the
next loop turn, the close released the segmenter's ring reader at once, and
the scheduled pump then read a released ring.

In-process first (the exact order: write, close, then the loop turns), then
end to end (ffmpeg's TEARDOWN arrives in the same read as its last packets),
asserting on the tree's log. The fronts' views take the same end of stream
through `stream_ended`; their log is part of the tree's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from hub.media.stream_desc import TrackDesc
from hub.shard.hls import HlsManager
from hub.shard.stream import Stream
from hub.shard.wake import WakeCoalescer
from tests.conftest import HubServer
from tests.e2e.tools import Pusher

pytestmark = pytest.mark.e2e

RELEASED = "released memoryview"
SPS = (Path(__file__).parent.parent / "data" / "sps_x264_base.bin").read_bytes()
PPS = bytes.fromhex("68ce3c80")


def _au(key: bool) -> bytes:
    nal = (b"\x65" if key else b"\x41") + b"\x88\x84\x00\x10\x20\x30"
    return len(nal).to_bytes(4, "big") + nal


def _video() -> TrackDesc:
    return TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS, width=640, height=360, framerate=25)


def test_closing_a_stream_with_a_live_segmenter(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[object]:
        wake = WakeCoalescer(lambda reader, streams: None)
        hls = HlsManager(tmp_path / "hls", fragment=0.2)
        stream = Stream(1, f"t{os.getpid()}", "/live/end", "", [_video()], "", wake,
                        on_close=hls.stream_closed)
        try:
            ts = 0
            for i in range(60):  # 2.4 s of 25 fps: several segments
                if i == 1:
                    opening = asyncio.ensure_future(hls.open(stream, timeout=5))
                stream.write(0, _au(i % 10 == 0), ts, ts, i % 10 == 0)
                ts += 3600
                await asyncio.sleep(0)
            folder = (await opening)["folder"]
            assert (Path(folder) / "index.m3u8").exists()
            # The end of a publisher: its last packets and its TEARDOWN in one read.
            stream.write(0, _au(False), ts, ts, False)
            stream.close()
            left: list[object] = list(stream.taps)  # the segmenter is off the stream's readers
            for _ in range(3):
                await asyncio.sleep(0)
            return left
        finally:
            stream.close()
            hls.close()

    with caplog.at_level(logging.DEBUG):
        taps_left = asyncio.run(scenario())
    errors = [r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records if r.levelno >= logging.WARNING]
    assert not errors, errors
    assert taps_left == [], "a closed segmenter is still among its stream's readers"


def test_publisher_ends_while_hls_is_live(hub: HubServer, media: Callable[[str], Path]) -> None:
    """Six publishers in turn, each with a live segmenter, each ended by its
    TEARDOWN: not one reader may touch a released ring, in any process."""
    for round_ in range(6):
        path = f"/live/hlsend{round_}"
        pusher = Pusher(hub.rtsp_url(path), media("h264")).start()
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"{hub.base}/streams{path}.m3u8", timeout=10) as r:
                        assert b"#EXTM3U" in r.read()
                        break
                except OSError:
                    assert time.monotonic() < deadline, hub.log()[-3000:]
                    time.sleep(0.3)
            # A player in the front too, so the front's view sees the end.
            with urllib.request.urlopen(f"{hub.base}/streams{path}.flv", timeout=10) as flv:
                assert flv.read(3) == b"FLV"
                time.sleep(1.0)  # the segmenter is pumping
                pusher.stop()  # SIGTERM: ffmpeg sends TEARDOWN after its last packets
                time.sleep(0.5)
        finally:
            pusher.stop()
    time.sleep(1.0)
    log = hub.log()
    assert RELEASED not in log and "in-process reader failed" not in log, \
        log[max(0, log.find("in-process reader failed") - 2000):][:4000]
    assert "Traceback" not in log, log[log.find("Traceback") - 500:][:4000]
