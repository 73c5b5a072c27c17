"""Fixtures for the IPC tests: run a coroutine under asyncio or uvloop, spawn peers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
import uvloop

PEER = str(Path(__file__).with_name("peer.py"))
TEST_TIMEOUT = 10.0


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_kind: str) -> Callable[[Callable[[], Awaitable[Any]]], Any]:
    """Run `fn()` on a fresh loop of the parametrized kind, bounded in time."""
    def runner(fn: Callable[[], Awaitable[Any]]) -> Any:
        factory = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop

        async def bounded() -> Any:
            return await asyncio.wait_for(fn(), TEST_TIMEOUT)
        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(bounded())
    return runner


class Peers:
    """Spawns peer.py children; kills leftovers at teardown."""

    def __init__(self, loop_kind: str) -> None:
        self.loop_kind = loop_kind
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn_fd(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """A child on one end of a socketpair; returns our end (not yet a channel)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = subprocess.Popen(
                [sys.executable, PEER, "--loop", self.loop_kind, "--fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self.procs.append(proc)
        return proc, ours

    def spawn_path(self, path: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, PEER, "--loop", self.loop_kind, "--path", path])
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


@pytest.fixture
def peers(loop_kind: str) -> Iterator[Peers]:
    ps = Peers(loop_kind)
    try:
        yield ps
    finally:
        ps.close()
