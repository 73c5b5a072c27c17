"""The children's code is imported once, by `python -m hub` before the
zygote's fork, so the supervisor, the zygote and every child share those
pages (hub/__main__.py `start_zygote`); with the zygote off, nothing of the
children's is imported by the supervisor."""

from __future__ import annotations

import time
from typing import Callable

from tests.conftest import HubServer

#: A compiled module only the front's HTTP server loads (httptools, through
#: hub.api.process): mapped into a process only if it imported the front.
FRONT_ONLY = "/httptools/parser/"


def mapped(pid: int, fragment: str) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return any(fragment in line for line in f)


def process_of(srv: HubServer, title: str) -> int:
    deadline = time.monotonic() + 20
    while True:
        for p in srv.children():
            if title in " ".join(p.cmdline()) or p.name().endswith(title):
                return p.pid
        if time.monotonic() > deadline:
            raise AssertionError(f"no {title} under the supervisor")
        time.sleep(0.1)


def test_children_code_is_imported_before_the_zygote_fork(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1")
    zygote = process_of(srv, "zygote")
    # The zygote's pages came from the supervisor: the front's HTTP parser
    # mapped in both means it was imported before the fork, once.
    assert mapped(srv.proc.pid, FRONT_ONLY)
    assert mapped(zygote, FRONT_ONLY)
    assert mapped(process_of(srv, "front-0"), FRONT_ONLY)


def test_without_the_zygote_the_supervisor_imports_no_child_code(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", env={"HUB_ZYGOTE": "0"})
    assert mapped(process_of(srv, "front-0"), FRONT_ONLY)
    assert not mapped(srv.proc.pid, FRONT_ONLY)
