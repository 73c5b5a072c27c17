"""The shard's HLS reaper (`HlsManager._reap`) runs only while a segmenter
does: a shard that served HLS once does not wake for it at rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.media.stream_desc import TrackDesc
from hub.shard import hls as hls_mod
from hub.shard.hls import HlsManager
from hub.shard.stream import Stream
from hub.shard.wake import WakeCoalescer

SPS = (Path(__file__).parent.parent / "data" / "sps_x264_base.bin").read_bytes()
PPS = bytes.fromhex("68ce3c80")


def _au(key: bool) -> bytes:
    nal = (b"\x65" if key else b"\x41") + b"\x88\x84\x00\x10\x20\x30"
    return len(nal).to_bytes(4, "big") + nal


def test_the_reaper_ends_with_the_last_segmenter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hls_mod, "REAP_EVERY", 0.05)

    async def scenario() -> None:
        hls = HlsManager(tmp_path / "hls", fragment=0.2)
        track = TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS, width=640, height=360, framerate=25)
        streams = []
        try:
            for n in range(2):
                stream = Stream(n + 1, f"t{n}", f"/live/reap{n}", "", [track], "",
                                WakeCoalescer(lambda reader, s: None), on_close=hls.stream_closed)
                streams.append(stream)
                opening = asyncio.ensure_future(hls.open(stream, timeout=5))
                ts = 0
                for i in range(20):  # 0.8 s of 25 fps: a segment or more
                    stream.write(0, _au(i % 10 == 0), ts, ts, i % 10 == 0)
                    ts += 3600
                    await asyncio.sleep(0)
                assert "folder" in await opening
            reaper = hls._reaper
            assert reaper is not None
            streams[0].close()  # one segmenter left: the reaper goes on
            await asyncio.sleep(0.2)
            assert hls._reaper is reaper and not reaper.done()
            streams[1].close()  # none left: it ends at its next turn
            await asyncio.sleep(0.2)
            assert reaper.done() and hls._reaper is None
            # A new segmenter starts a new one.
            again = Stream(9, "t9", "/live/reap9", "", [track], "", WakeCoalescer(lambda reader, s: None),
                           on_close=hls.stream_closed)
            streams.append(again)
            opening = asyncio.ensure_future(hls.open(again, timeout=5))
            ts = 0
            for i in range(20):
                again.write(0, _au(i % 10 == 0), ts, ts, i % 10 == 0)
                ts += 3600
                await asyncio.sleep(0)
            await opening
            assert hls._reaper is not None and hls._reaper is not reaper
        finally:
            for s in streams:
                s.close()
            hls.close()

    asyncio.run(scenario())
