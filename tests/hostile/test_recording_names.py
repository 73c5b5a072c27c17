"""Recording paths a URL can carry but no file system takes were answered
500, each with a traceback in the log.

The playback API lists `RECORDINGS/<path>`: a NUL (`%00`) in the path
raised ValueError, a path part over 255 bytes OSError ENAMETOOLONG, both
escaping the "no such folder" branch — `500 Internal Server Error` and a
logged traceback for each request of the listing, the MP4 or the VOD
playlist. No stream can have recordings there: an empty listing, and 404
for a range, as for any path without recordings.
"""

from __future__ import annotations

from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.hostile.harness import http_exchange

LONG = "a" * 300


@pytest.mark.parametrize("target, status", [
    ("/api/v1/recordings/live/x%00y", 200),
    ("/api/v1/recordings/live/x%00y/mp4?start=1", 404),
    (f"/api/v1/recordings/{LONG}", 200),
    (f"/api/v1/recordings/live/{LONG}/mp4?start=1", 404),
    (f"/api/v1/recordings/{LONG}/index.m3u8?start=1", 404),
], ids=["nul list", "nul mp4", "long list", "long mp4", "long playlist"])
def test_unfit_recording_paths_are_empty(hub_factory: Callable[..., HubServer], target: str, status: int) -> None:
    hub = hub_factory("--shards", "1", "--fronts", "1")
    (hub.data / "recordings" / "live").mkdir(parents=True)  # recordings exist: the name reaches the kernel
    sep = "&" if "?" in target else "?"
    request = f"GET {target}{sep}token={hub.token()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    got, _, body = http_exchange(hub.port, request)
    assert got == status, body
    if status == 200:
        assert b'"total": 0' in body
    assert "Traceback" not in hub.log()
