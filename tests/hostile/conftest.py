"""The hostile suite: a real server tree, a stream pushed by ffmpeg, a player
attached before each attack (it must keep playing) and the tree's memory.

Reuses the server and media fixtures of tests/conftest.py and
tests/e2e/conftest.py.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import media, media_dir, push  # noqa: F401 - fixtures re-exported
from tests.hostile.harness import FlvWatcher, TreeMemory


@pytest.fixture
def watch() -> Iterator[Callable[..., FlvWatcher]]:
    """`watch(hub, "/live/x")`: an HTTP-FLV player, playing when returned."""
    started: list[FlvWatcher] = []

    def start(srv: HubServer, path: str, query: str = "", frames: int = 10) -> FlvWatcher:
        w = FlvWatcher(srv.port, path, query)
        started.append(w)
        return w.start(frames)

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def tree(hub: HubServer) -> TreeMemory:
    return TreeMemory(hub)
