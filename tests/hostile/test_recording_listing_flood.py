"""Listing a path's recordings ran unbounded, in the front's default threads.

Indexing and joining recordings run in the front's bounded recording
workers (2 running, 8 waiting, else 503 at once), because they hold the
GIL. The folder listing every playback request starts with did not: it ran
in asyncio's default executor, as many at once as it has threads and the
rest queued without bound, and a folder of 50,000 recordings (a month of
60 s files) costs ~0.8 s of GIL-held Python per listing. 32 clients asking
for one such path's MP4 over and over: requests queued ~35 s (everyone's
playback requests behind them), a player of another stream on the same
front stalled up to 0.74 s and an API request took 1.2 s. Now the listing
is one more job of the recording workers: past their bound a request is
503 at once (`Retry-After: 1`), nothing started; 0.2 s and 0.3 s then.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from hub.store.recordings import file_name
from tests.conftest import HubServer
from tests.hostile.harness import http_exchange

FILES = 20_000
CLIENTS = 24


def test_listings_past_the_workers_bound_are_refused_at_once(hub_factory: Callable[..., HubServer],
                                                             tmp_path: Path) -> None:
    hub = hub_factory("--shards", "1", "--fronts", "1")
    folder = hub.data / "recordings" / "cams" / "x"
    folder.mkdir(parents=True)
    for i in range(FILES):  # names are what a listing reads; the files may be empty
        (folder / file_name(1.7e9 + 60 * i)).touch()
    request = f"GET /api/v1/recordings/cams/x/mp4?start=1&token={hub.token()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    answers: list[tuple[int, dict[str, str], float]] = []
    lock = threading.Lock()
    go = threading.Event()

    def ask() -> None:
        go.wait()
        t0 = time.monotonic()
        status, headers, _ = http_exchange(hub.port, request, timeout=60)
        with lock:
            answers.append((status, headers, time.monotonic() - t0))

    threads = [threading.Thread(target=ask) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    refused = [(h, took) for status, h, took in answers if status == 503]
    assert len(answers) == CLIENTS
    assert {status for status, _, _ in answers} <= {404, 503}  # no recording starts at 1970
    # 2 running and 8 waiting are taken; the rest are refused at once.
    assert len(refused) >= CLIENTS - 10, sorted(s for s, _, _ in answers)
    assert all(h.get("retry-after") == "1" and took < 2.0 for h, took in refused), refused
