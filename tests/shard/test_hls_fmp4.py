"""The shard's fMP4 HLS segmenter in one process: files, notices, clean-up."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

from hub.ipc.methods import Tell
from hub.shard.hls import HlsManager
from hub.shard.hls_fmp4 import PART_SEGMENTS, WINDOW
from tests.media.mp4.clips import Clip, make_ts, read_ts
from tests.shard.ingest_helpers import make_streams
from tests.shard.test_record import write

pytestmark = pytest.mark.e2e  # ffmpeg makes the clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    folder = tmp_path_factory.mktemp("clip")
    make_ts(folder / "in.ts", "h264", 24.0)
    return read_ts(folder / "in.ts", "h264")


class Front:
    def __init__(self) -> None:
        self.notices: list[tuple[str, dict[str, Any]]] = []

    def tell(self, msg: Tell) -> None:
        self.notices.append((msg[0].name, dict(msg[1])))


def test_parts_segments_playlists_notices_and_clean_up(tmp_path: Path, clip: Clip) -> None:
    front = Front()

    async def run() -> tuple[Path, list[str], str, str]:
        streams = make_streams()
        hls = HlsManager(tmp_path, 2.0)
        streams.on_stream_closed.append(hls.stream_closed)
        stream = streams.publish("/cam/a", "", clip.tracks, "test", None)
        # The LL open answers once a whole segment is out (2 s of the stream).
        writer = asyncio.get_running_loop().create_task(write(stream, clip.entries))
        plain_open = await asyncio.wait_for(hls.open(stream, "fmp4"), 10)
        seg = hls.segmenters[(stream.stream_id, "fmp4")]
        # Segments only: the source may be read in windows (`unwatched_ingest_window`).
        assert seg.pump in stream.taps and not stream.watched
        reply = await asyncio.wait_for(hls.open(stream, "ll", front), 10)
        assert stream.prompt_taps == [seg.pump] and stream.watched  # parts are awaited: at once
        assert plain_open["folder"] == reply["folder"]
        folder = Path(reply["folder"])
        assert folder == tmp_path / "cam/a/FMP4"
        assert reply["st"][:2] == [0, 10] and reply["n"] == 10 + reply["st"][2]
        await writer
        names = sorted(os.listdir(folder))
        ll = (folder / "ll.m3u8").read_text()
        plain = (folder / "index.m3u8").read_text()
        streams.close(stream)
        return folder, names, ll, plain

    folder, names, ll, plain = asyncio.run(run())
    segments = sorted(int(n[:-4]) for n in names if re.fullmatch(r"\d+\.m4s", n))
    parts = sorted(int(n[4:-4]) for n in names if n.startswith("part"))
    # 24 s: 11 whole 2 s segments out; the window's and one more are kept.
    assert segments == list(range(10 - WINDOW, 11)), segments
    assert parts[-1] - parts[0] + 1 == len(parts) and len(parts) <= (PART_SEGMENTS + 2) * 10
    assert "init0.mp4" in names and "ll.m3u8" in names and "index.m3u8" in names
    assert "#EXT-X-PART:" in ll and "#EXT-X-PRELOAD-HINT" in ll and "#EXT-X-PART:" not in plain
    # Every LL part was announced, after its files were in place.
    sent = [a for m, a in front.notices if m == "hls_part"]
    assert [a["n"] for a in sent] == list(range(sent[0]["n"], sent[0]["n"] + len(sent)))
    assert f"part{sent[-1]['n'] - 1}.m4s" in names
    # The stream ended: the front is told and the files are gone.
    assert front.notices[-1] == ("hls_gone", {"p": "/cam/a"})
    assert not folder.exists()
