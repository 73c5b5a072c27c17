"""HLS from the shard's segmenter: playlists advance, segments decode."""

from __future__ import annotations

import re
import time
import urllib.request
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e


def _get(url: str, timeout: float = 20.0) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


@pytest.mark.parametrize("variant, codec", [("h264", "h264"), ("h264_slices", "h264"), ("h265", "hevc")])
def test_hls_playlist_advances_and_segments_decode(hub: HubServer, push: Callable[..., Pusher],
                                                   variant: str, codec: str) -> None:
    push(f"/live/{variant}", variant)
    t0 = time.monotonic()
    status, headers, body = _get(f"{hub.base}/streams/live/{variant}.m3u8")
    first_playlist = time.monotonic() - t0
    assert status == 200 and headers["Content-Type"] == "application/x-mpegURL"
    text = body.decode()
    assert text.startswith("#EXTM3U") and "#EXT-X-TARGETDURATION:" in text
    assert first_playlist < 3.0, f"first playlist took {first_playlist:.1f}s"
    seq0 = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    uris = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert uris[0].startswith(f"/streams/live/{variant}/") and uris[0].endswith(".ts")
    r = play(f"{hub.base}{uris[0]}", frames=5, timeout=10)
    assert r.video_codec == codec and (r.width, r.height) == (640, 360) and r.decode_errors == 0
    # The playlist moves on while the stream plays.
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        text2 = _get(f"{hub.base}/streams/live/{variant}.m3u8")[2].decode()
        uris2 = [l for l in text2.splitlines() if l and not l.startswith("#")]
        if uris2[-1] != uris[-1]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("playlist did not advance")
    r = play(f"{hub.base}/streams/live/{variant}.m3u8", frames=60, timeout=25)
    assert r.video_codec == codec and r.video_frames >= 60 and r.decode_errors == 0, r.log[:10]
    assert seq0 >= 0


def test_hls_missing_segments_and_streams(hub: HubServer, push: Callable[..., Pusher]) -> None:
    import urllib.error

    for url, status in ((f"{hub.base}/streams/live/none.m3u8", 404),
                        (f"{hub.base}/streams/live/none/1.ts", 404),
                        (f"{hub.base}/streams/live/none/abc.ts", 400)):
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(url)
        assert e.value.code == status
