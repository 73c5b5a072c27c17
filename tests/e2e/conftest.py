"""End-to-end fixtures: media files made once, a server, and ffmpeg pushers."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, make_media

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg CLI is required for end-to-end tests (make sysdeps)")
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def media(media_dir: Path) -> Callable[[str], Path]:
    def get(variant: str) -> Path:
        return make_media(media_dir, variant)
    return get


def wait_live(srv: HubServer, path: str, timeout: float = 10.0) -> None:
    """Until the stream is live (its FLV URL answers 200)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{srv.base}/streams{path}.flv", timeout=2) as r:
                if r.status == 200 and r.read(13).startswith(b"FLV"):
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} did not go live in {timeout}s\n{srv.log()[-3000:]}")


@pytest.fixture
def push(hub: HubServer, media: Callable[[str], Path]) -> Iterator[Callable[..., Pusher]]:
    started: list[Pusher] = []

    def start(path: str, variant: str = "h264", transport: str = "tcp", srv: HubServer | None = None) -> Pusher:
        s = srv or hub
        p = Pusher(s.rtsp_url(path), media(variant), transport).start()
        started.append(p)
        wait_live(s, path)
        return p

    yield start
    for p in started:
        p.stop()
