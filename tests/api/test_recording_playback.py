"""Playback of recordings never runs its CPU work on the front's loop, a
player's follow-up requests of a range cost no second join, and past the
bounds of that work a request is refused at once (the audit: "join_range
runs on the event loop, per request, uncached").

Real recorded files (the segmenter and the recorder's file writer, 200 ms
fragments, 60 s files) in a recordings folder; the real REST handler
through a Starlette app, driven in-process over ASGI.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from hub.api.rest import recording_files, recordings
from hub.api.rest.app import hub_error
from hub.errors import HubError
from hub.media.mp4 import playback
from hub.media.mp4.playback import Mp4FileIndex, RecordedFile, join_range
from hub.store.recordings import file_name
from hub.store.users import User
from tests.media.mp4.test_init import aac, h264
from tests.media.mp4.test_playback import T0, av_entries, build, index_bytes, record

SECONDS = 600  # 3,000 fragments: a join of ~0.4 s
PATH = "/cams/x"
URL = "/api/v1/recordings" + PATH
ADMIN = User("admin", "", admin=True)
Answer = tuple[int, dict[str, str], bytes, float]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """The recordings root, and every file's bytes by its full path."""
    root = tmp_path_factory.mktemp("recordings")
    folder = root / PATH.strip("/")
    folder.mkdir(parents=True)
    files, recs = record([([h264(), aac()], av_entries(SECONDS), T0)], segment_target=60.0)
    out = {}
    for r in recs:
        path = folder / file_name(r.start)
        path.write_bytes(files[r.path])
        out[str(path)] = files[r.path]
    return root, out


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """New (empty) caches and workers for each test; yields the count of joins."""
    workers = recording_files.recording_workers()
    monkeypatch.setattr(recordings, "_WORKERS", workers)
    monkeypatch.setattr(recordings, "_INDEX", recording_files.RecordingIndex(workers))
    monkeypatch.setattr(recordings, "_JOINED", recording_files.JoinedRanges(workers))
    joins: list[int] = []
    rebase = playback._rebase

    def counted(*args: Any) -> Any:
        joins.append(1)
        return rebase(*args)

    monkeypatch.setattr(playback, "_rebase", counted)
    yield joins


def _app(root: Path) -> Starlette:
    app = Starlette(routes=[Route("/api/v1/recordings/{path:path}", recordings.recording_item, methods=["GET"])],
                    exception_handlers={HubError: hub_error})
    app.state.front = SimpleNamespace(config=SimpleNamespace(recordings_path=root))
    return app


async def _get(app: Starlette, query: str, headers: dict[str, str] | None = None, method: str = "GET",
               url: str = URL + "/mp4") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, as a server would pass it."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": url, "raw_path": url.encode(), "query_string": query.encode(),
             "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80), "state": {"user": ADMIN}}
    asked = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    hdrs = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@functools.lru_cache(maxsize=None)
def _index(path: str, data: bytes) -> Mp4FileIndex:
    return index_bytes(data)


def _expected(recorded: tuple[Path, dict[str, bytes]], start: float, end: float) -> tuple[bytes, float]:
    """The MP4 for the range, joined here on its own; and how long the join took."""
    _, files = recorded
    recs = [RecordedFile(p, T0 + i * 60, _index(p, d)) for i, (p, d) in enumerate(sorted(files.items()))]
    t0 = time.perf_counter()
    rng = join_range(recs, start, end)
    took = time.perf_counter() - t0
    return build(rng, files), took


def test_a_long_join_does_not_block_the_loop(recorded: tuple[Path, dict[str, bytes]], fresh: list[int]) -> None:
    want, one = _expected(recorded, T0, T0 + SECONDS)
    fresh.clear()
    assert one >= 0.2, f"the join ({one:.3f} s) is too short for this test to tell"

    async def main() -> tuple[int, bytes, list[float], float]:
        app = _app(recorded[0])
        gaps: list[float] = []
        done = False

        async def ticker() -> None:
            last = time.monotonic()
            while not done:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        asked = time.monotonic()
        status, _, body = await _get(app, f"start={T0}&end={T0 + SECONDS}")
        took = time.monotonic() - asked
        done = True
        await tick
        return status, body, gaps, took

    status, body, gaps, took = asyncio.run(main())
    assert status == 200 and body == want
    assert fresh == [1]
    # On the loop, the join stalls it for its whole length: one gap as long as
    # the request. Off it, the ticker waits only for its turns at the GIL
    # (longer on a loaded machine, but then the request takes longer too).
    assert max(gaps) < 0.5 * took, (max(gaps), took, one)


def test_a_ranges_follow_up_requests_cost_no_join(recorded: tuple[Path, dict[str, bytes]],
                                                  fresh: list[int]) -> None:
    start, end = T0 + 95.5, T0 + 215.0
    want, _ = _expected(recorded, start, end)
    fresh.clear()

    async def main() -> None:
        app = _app(recorded[0])
        query = f"start={start}&end={end}"
        status, headers, body = await _get(app, query)
        assert status == 200 and body == want and headers["content-length"] == str(len(want))
        assert len(fresh) == 1
        # What a <video> asks next: the first byte, HEAD, ranges, the whole file again.
        t0 = time.perf_counter()
        status, headers, body = await _get(app, query, {"Range": "bytes=0-0"})
        took = time.perf_counter() - t0
        assert status == 206 and body == want[:1] and headers["content-range"] == f"bytes 0-0/{len(want)}"
        status, headers, body = await _get(app, query, method="HEAD")
        assert status == 200 and body == b"" and headers["content-length"] == str(len(want))
        for lo, hi in ((1000, 5001), (len(want) - 700, len(want))):
            status, _, body = await _get(app, query, {"Range": f"bytes={lo}-{hi - 1}"})
            assert status == 206 and body == want[lo:hi]
        assert (await _get(app, query))[2] == want
        assert len(fresh) == 1, "one join for every request of the range"
        assert took < 0.1, took
        # The playlist over the range: the same join; its segments' URL pins
        # the end inside the last fragment: one join for all of them.
        status, _, playlist = await _get(app, query, url=URL + "/index.m3u8")
        assert status == 200 and len(fresh) == 1
        segment_query = next(ln for ln in playlist.decode().splitlines() if ln.startswith("mp4?"))[4:]
        assert f"&end={end}" not in segment_query
        for _ in range(3):
            status, _, body = await _get(app, segment_query, {"Range": "bytes=0-99"})
            assert status == 206 and body == want[:100]
        assert len(fresh) == 2

        # Asked past the end of what is recorded, any end gives the same MP4:
        # one join for all (as `end` left out, which defaults to now).
        tail = [await _get(app, f"start={T0 + SECONDS - 30}&end={T0 + SECONDS + extra}")
                for extra in (1, 5, 500)]
        assert tail[0][0] == 200 and tail[0][2] == tail[1][2] == tail[2][2]
        assert len(fresh) == 3

        # A file that changed (rewritten, grown: another mtime) is joined again.
        path = sorted(recorded[1])[2]
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert (await _get(app, query))[2] == want
        assert len(fresh) == 4

    asyncio.run(main())


def test_past_the_bound_a_request_is_refused_at_once(recorded: tuple[Path, dict[str, bytes]], fresh: list[int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """More costly requests at once than the front runs and queues (the
    joins held until the refused ones have their answer): the rest are 503
    (with Retry-After) at once, and do no work; the others are answered."""
    bound = recording_files.WORKERS + recording_files.QUEUE
    n = bound + 3
    width = 50.0
    gate = threading.Event()
    counted = playback._rebase

    def held(*args: Any) -> Any:
        gate.wait(3.0)
        return counted(*args)

    monkeypatch.setattr(playback, "_rebase", held)

    async def main() -> tuple[list[Answer], list[Answer]]:
        app = _app(recorded[0])
        assert (await _get(app, "", url=URL))[0] == 200  # every file indexed (no join)

        async def one(i: int) -> Answer:
            t0 = time.monotonic()
            status, headers, body = await _get(app, f"start={T0 + i * 7.0}&end={T0 + i * 7.0 + width}")
            return status, headers, body, time.monotonic() - t0

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        deadline = time.monotonic() + 2.0
        while sum(t.done() for t in tasks) < n - bound and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        early = [t.result() for t in tasks if t.done()]
        gate.set()
        return early, list(await asyncio.gather(*tasks))

    early, answers = asyncio.run(main())
    assert [a[0] for a in early] == [503] * (n - bound), [a[0] for a in answers]
    for status, headers, body, took in early:
        assert headers["retry-after"] == "1" and b"try again" in body and took < 0.5, (headers, body, took)
    assert sorted(a[0] for a in answers) == [200] * bound + [503] * (n - bound)
    assert len(fresh) == bound, "a refused request joins nothing"
    assert recordings._WORKERS.pending == 0
    for i, (status, _, body, _) in enumerate(answers):
        if status == 200:
            assert body == _expected(recorded, T0 + i * 7.0, T0 + i * 7.0 + width)[0]
