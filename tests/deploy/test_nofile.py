"""The supervisor raises RLIMIT_NOFILE's soft limit to the hard one; children inherit it."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import HubServer


def _limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return _number(soft), _number(hard)
    raise AssertionError("no 'Max open files' line")


def _number(text: str) -> int:
    return resource.RLIM_INFINITY if text == "unlimited" else int(text)


def _ceiling(hard: int) -> int:
    """What the supervisor can raise the soft limit to: the hard one, or fs.nr_open."""
    if hard == resource.RLIM_INFINITY:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    return hard


@pytest.fixture
def low_soft_nofile() -> Iterator[tuple[int, int]]:
    """Start the server with a soft limit below the hard one (the usual 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.fail(f"hard open-file limit {hard} leaves no room to test raising the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    yield 512, hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_children_run_with_the_hard_limit(hub_factory: Callable[..., HubServer],
                                          low_soft_nofile: tuple[int, int]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--log-format", "json")
    children = srv.children()
    # a shard, a front, and the zygote they were forked from (hub/zygote.py)
    assert sorted(c.name().split(": ")[-1] for c in children) == ["front-0", "shard-0", "zygote"]
    want = _ceiling(low_soft_nofile[1])
    assert _limits(srv.proc.pid) == (want, low_soft_nofile[1])
    for child in children:
        assert _limits(child.pid) == (want, low_soft_nofile[1])
    logged = [json.loads(line) for line in srv.log().splitlines()]
    assert any(o["process"] == "supervisor" and o.get("nofile") == want for o in logged)
