"""RTMP end to end: a server tree with RTMP's own port, and RTMP pushers.

Reuses the server, media and RTSP pusher fixtures of tests/conftest.py and
tests/e2e/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import HubServer, free_port
from tests.e2e.conftest import media, media_dir, push, wait_live  # noqa: F401 - fixtures re-exported
from tests.rtmp.peers import FlvPusher


@dataclass
class RtmpHub:
    """A server tree and its RTMP port (the shared port serves RTMP too)."""

    srv: HubServer
    rtmp_port: int

    def url(self, path: str, port: int | None = None) -> str:
        return f"rtmp://127.0.0.1:{port or self.rtmp_port}/{path.lstrip('/')}"


@pytest.fixture
def rtmp_factory(hub_factory: Callable[..., HubServer]) -> Callable[..., RtmpHub]:
    def make(*args: str) -> RtmpHub:
        port = free_port()
        return RtmpHub(hub_factory("--shards", "2", "--fronts", "2", "--rtmp-port", str(port), *args), port)
    return make


@pytest.fixture
def rtmp_hub(rtmp_factory: Callable[..., RtmpHub]) -> RtmpHub:
    return rtmp_factory()


@pytest.fixture
def rtmp_push(media: Callable[[str], Path]) -> Iterator[Callable[..., FlvPusher]]:  # noqa: F811
    """`rtmp_push(hub, url, path)`: ffmpeg pushing H.264+AAC as FLV to `url`,
    returned once `path` is live."""
    started: list[FlvPusher] = []

    def start(srv: HubServer, url: str, path: str, variant: str = "h264") -> FlvPusher:
        p = FlvPusher(url, media(variant)).start()
        started.append(p)
        wait_live(srv, path)
        return p

    yield start
    for p in started:
        p.stop()
