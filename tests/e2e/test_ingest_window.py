"""`ingest_window`: a shard reads each live TCP source at most once per window.

Two trees side by side, one with a 100 ms window and one reading at once,
each taking the same FFmpeg publishers (RTSP/TCP and RTMP); the windowed
tree also pulls one of the other tree's streams by a route. The windowed
shard makes far fewer read syscalls than the other for more streams, and
what it ingests plays whole — PyAV decodes the video of all three with
its size and advancing timestamps.

`unwatched_ingest_window` (40 ms by default; 100 here, so the counts stay
far apart on a loaded machine): a tree reads its publishers in windows
while nobody plays them, at once while someone does, and again in windows
after the players leave."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import PlayResult, Pusher, make_media, play
from tests.rtmp.peers import FlvPusher

pytestmark = pytest.mark.e2e

WINDOW_MS = 100


def shard_reads(srv: HubServer) -> int:
    """Read syscalls the tree's shard made so far (/proc/PID/io)."""
    shards = [p for p in srv.children() if "shard" in " ".join(p.cmdline())]
    assert len(shards) == 1, [p.cmdline() for p in srv.children()]
    try:
        return int(shards[0].io_counters().read_count)
    except psutil.Error as e:  # pragma: no cover - the shard died
        raise AssertionError(f"shard gone: {e}\n{srv.log()[-2000:]}") from None


def assert_played_whole(res: PlayResult, frames: int) -> None:
    """The test media's video, decoded: its size, `frames` frames, no
    decoding error, advancing timestamps."""
    assert res.video_codec == "h264" and (res.width, res.height) == (640, 360), res.log
    assert res.video_frames >= frames and res.decode_errors == 0, res.log
    assert res.advancing(), res.video_pts


def read_rate(srv: HubServer, seconds: float) -> float:
    """The shard's read syscalls per second over the next `seconds`."""
    r0, t0 = shard_reads(srv), time.monotonic()
    time.sleep(seconds)
    return (shard_reads(srv) - r0) / (time.monotonic() - t0)


def test_a_window_cuts_reads_and_the_streams_play(hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    media = make_media(tmp_path, "h264")
    windowed = hub_factory("--shards", "1", "--fronts", "1", "--ingest-window", str(WINDOW_MS))
    control = hub_factory("--shards", "1", "--fronts", "1", "--unwatched-ingest-window", "0")
    pushers = []
    try:
        for srv in (windowed, control):
            pushers.append(Pusher(srv.rtsp_url("/live/win"), media).start())
            pushers.append(FlvPusher(f"rtmp://127.0.0.1:{srv.port}/live/winr", media).start())
        for srv in (windowed, control):
            wait_live(srv, "/live/win")
            wait_live(srv, "/live/winr")
        assert windowed.post_json("/api/v1/routes", {"pattern": "/pulled", "url": control.rtsp_url("/live/win"),
                                                     "keepalive": True}) == 200
        res = play(windowed.rtsp_url("/pulled"), frames=10)  # starts the pull, which stays
        assert res.video_frames >= 10, res.log
        time.sleep(1.0)
        r0 = {id(s): shard_reads(s) for s in (windowed, control)}
        t0 = time.monotonic()
        time.sleep(4.0)
        elapsed = time.monotonic() - t0
        rate = {id(s): (shard_reads(s) - r0[id(s)]) / elapsed for s in (windowed, control)}
        with_window, without = rate[id(windowed)], rate[id(control)]
        # Two publishers at 25 fps + AAC: ~120 reads/s read at once, a pull
        # ~20 more; at most ~10/s per source in 100 ms windows (~30 in all,
        # the shard's own few included; ~50 if the pull were read at once).
        assert with_window < 0.5 * without, (with_window, without)
        assert with_window < 40, (with_window, without)

        for url in (windowed.rtsp_url("/live/win"), f"{windowed.base}/streams/live/winr.flv",
                    windowed.rtsp_url("/pulled")):
            assert_played_whole(play(url, frames=40), 40)
        assert all(p.alive() for p in pushers), [b"".join(p.log) for p in pushers]
    finally:
        for p in pushers:
            p.stop()


def test_unwatched_streams_are_read_in_windows_until_someone_plays_them(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    media = make_media(tmp_path, "h264", seconds=12)
    srv = hub_factory("--shards", "1", "--fronts", "1", "--unwatched-ingest-window", str(WINDOW_MS))
    urls = (srv.rtsp_url("/live/u"), f"{srv.base}/streams/live/ur.flv")
    pushers = [Pusher(srv.rtsp_url("/live/u"), media).start(),
               FlvPusher(f"rtmp://127.0.0.1:{srv.port}/live/ur", media).start()]
    try:
        wait_live(srv, "/live/u")
        wait_live(srv, "/live/ur")
        time.sleep(1.0)
        unwatched = read_rate(srv, 3.0)

        results: dict[str, PlayResult] = {}

        def watch(url: str) -> None:
            results[url] = play(url, frames=150, timeout=20)

        players = [threading.Thread(target=watch, args=(u,)) for u in urls]
        for t in players:
            t.start()
        time.sleep(1.5)  # both players attached and playing
        watched = read_rate(srv, 3.0)
        for t in players:
            t.join(30)
        time.sleep(1.0)  # the players left
        again = read_rate(srv, 3.0)

        # Two sources at 25 fps + AAC: ~120 reads/s read at once; at most
        # 10/s each in 100 ms windows (~25, the shard's own few included).
        assert unwatched < 0.5 * watched, (unwatched, watched)
        assert again < 0.5 * watched, (again, watched)
        assert unwatched < 40 and again < 40, (unwatched, again)
        for url in urls:
            assert_played_whole(results[url], 150)
        assert all(p.alive() for p in pushers), [b"".join(p.log) for p in pushers]
    finally:
        for p in pushers:
            p.stop()
