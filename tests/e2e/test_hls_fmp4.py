"""fMP4 HLS and Low-Latency HLS from the shard's segmenter, through the fronts.

H.264+AAC and H.265+AAC pushes; the fMP4 playlist's segments and the LL
playlist's parts decode (PyAV, with the init segment in front); a blocking
playlist reload is answered when the part it asks for is out (within one
part duration of the part's file landing), and a request for the part the
preload hint names waits for it.
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e


def _get(url: str, timeout: float = 25.0) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def _status(url: str, timeout: float = 25.0) -> int:
    try:
        return _get(url, timeout)[0]
    except urllib.error.HTTPError as e:
        return e.code


def _uris(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def _decode(tmp: Path, init: bytes, media: bytes, name: str) -> object:
    f = tmp / name
    f.write_bytes(init + media)
    return play(str(f), frames=10_000, timeout=20)


@pytest.mark.parametrize("variant, codec", [("h264", "h264"), ("h265", "hevc")])
def test_fmp4_playlist_segments_decode(hub: HubServer, push: Callable[..., Pusher], tmp_path: Path,
                                       variant: str, codec: str) -> None:
    path = f"/live/f{variant}"
    push(path, variant)
    status, headers, body = _get(f"{hub.base}/streams{path}.m3u8?variant=fmp4")
    assert status == 200 and headers["Content-Type"] == "application/x-mpegURL"
    text = body.decode()
    assert "#EXT-X-VERSION:7" in text and "#EXT-X-PART" not in text, text
    init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
    assert init_uri == f"/streams{path}/fmp4/init0.mp4"
    seg_uri = _uris(text)[0]
    assert re.fullmatch(rf"/streams{path}/fmp4/\d+\.m4s", seg_uri), seg_uri
    init = _get(hub.base + init_uri)[2]
    seg = _get(hub.base + seg_uri)[2]
    r = _decode(tmp_path, init, seg, "seg.mp4")
    assert r.video_codec == codec and (r.width, r.height) == (640, 360), r
    assert r.video_frames >= 10 and r.decode_errors == 0 and r.advancing(), r.log[:5]
    # The whole playlist plays (PyAV's HLS demuxer reads EXT-X-MAP).
    r = play(f"{hub.base}/streams{path}.m3u8?variant=fmp4", frames=40, timeout=25)
    assert r.video_codec == codec and r.video_frames >= 40 and r.decode_errors == 0, r.log[:10]
    assert r.audio_codec == "aac" and r.audio_frames > 0


def test_ll_playlist_parts_blocking_reload_and_preload_hint(hub: HubServer, push: Callable[..., Pusher],
                                                           tmp_path: Path) -> None:
    path = "/live/ll"
    push(path, "h264")
    token = hub.token()
    url = f"{hub.base}/streams{path}.m3u8?variant=ll&token={token}"
    text = _get(url)[2].decode()
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=" in text, text
    assert "#EXT-X-PART-INF:PART-TARGET=0.200" in text, text
    parts = re.findall(r'#EXT-X-PART:DURATION=([\d.]+),URI="([^"]+)"', text)
    assert parts and all(u.endswith(f"?token={token}") for _, u in parts), text
    hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)
    hinted = int(re.search(r"part(\d+)\.m4s", hint).group(1))
    # A part decodes after the init (it carries 0.2 s: 5 frames at 25 fps).
    init = _get(hub.base + re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1))[2]
    first_independent = re.search(r'URI="([^"]+)",INDEPENDENT=YES', text).group(1)
    r = _decode(tmp_path, init, _get(hub.base + first_independent)[2], "part.mp4")
    assert r.video_codec == "h264" and r.video_frames == 5 and r.decode_errors == 0, (r, r.log[:5])

    # The preload hint: asked before it exists, answered once it is written.
    t0 = time.monotonic()
    status, _, body = _get(hub.base + hint)
    waited = time.monotonic() - t0
    assert status == 200 and body[4:8] == b"moof", body[:16]
    assert waited < 1.0, waited

    # Blocking reload for the part after the hinted one: answered with a
    # playlist that lists it, within one part duration of its file landing.
    folder = _fmp4_folder(hub, path)
    target = hinted + 1  # the hinted part is out: wait for the one after it
    lags = []
    for _ in range(5):
        msn, part = _next_part(text, target)
        status, _, body = _get(f"{url}&_HLS_msn={msn}&_HLS_part={part}")
        answered = time.time()
        assert status == 200
        text = body.decode()
        listed = text.split("#EXT-X-PRELOAD-HINT")[0]
        assert f"/part{target}.m4s?" in listed, (msn, part, target, text)
        landed = os.stat(folder / f"part{target}.m4s").st_mtime
        lags.append(answered - landed)
        target = int(re.search(r'PRELOAD-HINT:TYPE=PART,URI="[^"]*part(\d+)\.m4s', text).group(1))
    print(f"blocking reload answered {[round(x * 1000, 1) for x in lags]} ms after the part landed")
    assert max(lags) < 0.2, lags

    # Too far ahead is refused at once, not held.
    assert _status(f"{url}&_HLS_msn={msn + 5}&_HLS_part=0") == 400
    assert _status(f"{url}&_HLS_part=1") == 400
    assert _status(f"{hub.base}/streams{path}.m3u8?variant=nope") == 400


def _next_part(text: str, number: int) -> tuple[int, int]:
    """(media sequence, part index) that part ``number`` will have: the
    playlist's open segment continues unless that part starts a new one (a
    blocking reload for either answers when it is out)."""
    seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    lines = text.splitlines()
    segments = sum(1 for ln in lines if ln.startswith("#EXTINF"))
    open_parts = 0
    for ln in reversed(lines):
        if ln.startswith("#EXTINF"):
            break
        if ln.startswith("#EXT-X-PART:"):
            open_parts += 1
    last_listed = max(int(n) for n in re.findall(r"part(\d+)\.m4s", text.split("#EXT-X-PRELOAD-HINT")[0]))
    return seq + segments, open_parts + (number - last_listed - 1)


def _fmp4_folder(hub: HubServer, path: str) -> Path:
    instance = re.search(r"instance (\d+):", hub.log()).group(1)
    return Path("/dev/shm") / f"ipchub-hls-{instance}" / path.strip("/") / "FMP4"


def test_ll_parts_and_playlist_over_threads(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """Many blocking reloads at once on one stream are all answered."""
    path = "/live/llmany"
    push(path, "h264")
    url = f"{hub.base}/streams{path}.m3u8?variant=ll"
    text = _get(url)[2].decode()
    hinted = int(re.search(r'PRELOAD-HINT:TYPE=PART,URI="[^"]*part(\d+)\.m4s', text).group(1))
    msn, part = _next_part(text, hinted)
    results: list[int] = []

    def one() -> None:
        results.append(_status(f"{url}&_HLS_msn={msn}&_HLS_part={part}", timeout=10))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [200] * 20, results
