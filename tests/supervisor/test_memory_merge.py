"""`memory_merge`: every process of the tree has its memory marked for the
kernel's same-page merging (hub.ksm), by the fork it came from or by
itself when exec'd; without the setting, none is."""

from __future__ import annotations

import time
from typing import Callable

from tests.conftest import HubServer


def merge_any(pid: int) -> str:
    """What the kernel says of this process: "yes" if marked (Linux 6.4+)."""
    with open(f"/proc/{pid}/ksm_stat") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "ksm_merge_any":
                return value.strip()
    raise AssertionError(f"/proc/{pid}/ksm_stat has no ksm_merge_any")


def tree(srv: HubServer, expected: int) -> list[int]:
    deadline = time.monotonic() + 20
    while True:
        pids = [srv.proc.pid] + [p.pid for p in srv.children()]
        if len(pids) >= expected or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def test_the_whole_tree_is_marked(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "2", "--fronts", "2", "--memory-merge")
    pids = tree(srv, 6)  # supervisor, zygote, 2 shards, 2 fronts
    assert len(pids) == 6, pids
    assert {pid: merge_any(pid) for pid in pids} == {pid: "yes" for pid in pids}
    assert "memory_merge: this tree's memory is mergeable" in srv.log()


def test_children_started_without_the_zygote_are_marked_too(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", env={"HUB_ZYGOTE": "0", "HUB_MEMORY_MERGE": "true"})
    pids = tree(srv, 3)  # supervisor, a shard and a front, each its own `python -m`
    assert len(pids) == 3, pids
    assert {pid: merge_any(pid) for pid in pids} == {pid: "yes" for pid in pids}


def test_by_default_nothing_is_marked(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1")
    pids = tree(srv, 4)
    assert len(pids) == 4, pids
    assert {pid: merge_any(pid) for pid in pids} == {pid: "no" for pid in pids}
    assert "memory_merge" not in srv.log()
