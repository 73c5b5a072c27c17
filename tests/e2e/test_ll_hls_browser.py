"""LL-HLS in headless Chromium with hls.js: the live delay, measured, against TS HLS.

One stream, pushed in real time by `tests.e2e.stamped` (every picture
carries its frame number; the publisher notes when it sent each frame).
One page plays it twice at once with hls.js, as LL-HLS (``?variant=ll``,
``lowLatencyMode``, catching up at up to 1.2x as the console's player does:
a player joins at the keyframe before its target, up to a GOP further
back) and as TS HLS (hls.js defaults). For every frame the
browser presents (``requestVideoFrameCallback``) the page reads the frame
number off the picture and notes the presentation time; delay = that time
minus the frame's send time. LL-HLS must stay under 2 s; TS HLS lags by
segments (2 s each here). The players join a stream whose playlists are
already full (as viewers of a running camera do): a TS player that starts
with the segmenter sees a short playlist and starts closer to live than
one that joins later.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import urllib.request
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, HubServer
from tests.e2e.browser import chromium_page
from tests.e2e.conftest import wait_live
from tests.e2e.stamped import READ_BARCODE_JS, make_stamped_media, read_times

pytestmark = pytest.mark.e2e

PATH = "/live/stamped"
WATCH = 14.0  # seconds of playback measured (after both players show pictures)

PLAYERS_JS = "async ([llUrl, tsUrl]) => {" + READ_BARCODE_JS + """
  await new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/console/vendor/hls.js"; s.onload = resolve; s.onerror = () => reject(new Error("no hls.js"));
    document.head.appendChild(s);
  });
  window.players = {};
  for (const [name, url, config] of [["ll", llUrl, {lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.2}], ["ts", tsUrl, {}]]) {
    const video = document.createElement("video");
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.appendChild(video);
    const hls = new Hls(config);
    const p = {frames: [], errors: [], hls, video};
    window.players[name] = p;
    hls.on(Hls.Events.ERROR, (_e, d) => p.errors.push(`${d.type} ${d.details}${d.fatal ? " (fatal)" : ""}`));
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
    const canvas = document.createElement("canvas");
    canvas.width = 640; canvas.height = 40;
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    const onFrame = (_now, meta) => {
      p.frames.push([readBarcode(video, ctx), performance.timeOrigin + meta.expectedDisplayTime, video.videoWidth]);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
}
"""

STATE_JS = """(name) => {
  const p = window.players[name];
  return {frames: p.frames.splice(0), errors: p.errors, latency: p.hls.latency,
          target: p.hls.targetLatency, lowLatency: p.hls.lowLatencyMode};
}"""


def _delays(shown: list[list[float]], sent: list[float]) -> list[float]:
    """Shown time minus send time (s) of every picture shown."""
    return [t / 1000 - sent[int(n)] for n, t, _ in shown if int(n) < len(sent)]


def test_ll_hls_live_delay_in_chromium_against_ts(hub: HubServer, media_dir: Path, tmp_path: Path) -> None:
    clip = make_stamped_media(media_dir)
    times_file = tmp_path / "sent.txt"
    pusher = subprocess.Popen([sys.executable, "-m", "tests.e2e.stamped", str(clip), hub.rtsp_url(PATH),
                               str(times_file)], cwd=ROOT, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_live(hub, PATH)
        ll_url = f"{hub.base}/streams{PATH}.m3u8?variant=ll"
        ts_url = f"{hub.base}/streams{PATH}.m3u8?variant=ts"
        _wait_segments(ll_url, 4)
        _wait_segments(ts_url, 4)
        with chromium_page() as (page, log):
            page.goto(hub.base + "/demos/")
            page.evaluate(PLAYERS_JS, [ll_url, ts_url])
            frames: dict[str, list[list[float]]] = {"ll": [], "ts": []}
            info: dict[str, Any] = {}
            deadline = time.monotonic() + 30
            while not (frames["ll"] and frames["ts"]):  # both show pictures
                assert time.monotonic() < deadline, (info, log.console[-10:])
                page.wait_for_timeout(250)
                for name in frames:
                    info[name] = page.evaluate(STATE_JS, name)
                    frames[name] += info[name]["frames"]
            # Start-up (the first segments) is not the steady state. A window
            # in which the LL player stalled (hls.js says so: the machine ran
            # other tests beside Chromium and it fell behind for seconds,
            # catching up at 1.2x after) is measured once more; a delay that
            # is the server's would show in the second window too.
            for attempt in range(2):
                stalls = sum("bufferStalledError" in e for e in info["ll"]["errors"])
                frames = {"ll": [], "ts": []}
                page.wait_for_timeout(int(WATCH * 1000))
                for name in frames:
                    info[name] = page.evaluate(STATE_JS, name)
                    frames[name] += info[name]["frames"]
                stalled = sum("bufferStalledError" in e for e in info["ll"]["errors"]) > stalls
                if not stalled or statistics.median(_delays(frames["ll"], read_times(times_file)) or [0.0]) < 2.0:
                    break
                print(f"window {attempt + 1}: the LL player stalled; measuring again")
            assert not log.errors, log.errors
    finally:
        pusher.terminate()
        pusher.wait(10)
    sent = read_times(times_file)
    delays = {}
    for name, shown in frames.items():
        d = [round(x, 2) for x in _delays(shown, sent)]
        print(name, len(shown), "frames; delays every second:", d[::25], info[name]["errors"][:5])
    for name, shown in frames.items():
        numbers = [int(n) for n, _, _ in shown]
        assert all(w == 640 for _, _, w in shown), name
        # Real time: the pictures shown span the time watched (a loaded
        # machine's headless Chromium presents only some of them).
        assert numbers == sorted(numbers) and numbers[-1] - numbers[0] >= WATCH * 25 * 0.9, (name, numbers[:10])
        assert len(shown) >= (numbers[-1] - numbers[0]) / 2, (name, len(shown))
        d = _delays(shown, sent)
        delays[name] = (statistics.median(d), min(d), max(d))
        fatal = [e for e in info[name]["errors"] if "fatal" in e]
        assert not fatal, (name, info[name]["errors"])
    print(f"live delay, send -> shown in Chromium (median, min, max), s: "
          f"LL-HLS {delays['ll'][0]:.2f} {delays['ll'][1]:.2f} {delays['ll'][2]:.2f} "
          f"(hls.js latency {info['ll']['latency']:.2f}, target {info['ll']['target']:.2f}); "
          f"TS HLS {delays['ts'][0]:.2f} {delays['ts'][1]:.2f} {delays['ts'][2]:.2f}")
    assert info["ll"]["lowLatency"] is True
    assert delays["ll"][0] < 2.0, delays
    assert delays["ts"][0] > delays["ll"][0] + 2.0, delays


def _wait_segments(url: str, n: int, timeout: float = 30.0) -> None:
    """Until the playlist lists ``n`` whole segments (starting its segmenter)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=25) as r:
            if len(re.findall(r"^#EXTINF", r.read().decode(), re.M)) >= n:
                return
        assert time.monotonic() < deadline, f"{url}: fewer than {n} segments after {timeout}s"
        time.sleep(0.5)
