"""A stranger's flood of `/api/v1/runtime?extra=1` (no token, as the
reference): every request made the supervisor ask every child for its
figures, and each child walk its whole heap (`gc.get_objects()`) on its
loop, shards among them. 16 connections for 5 s on an idle tree of 2 shards
and 2 fronts: ~2,800 answers, ~11,000 requests to the children, each shard
at 11% of a core and the supervisor at half a core; a heap of players
makes each walk dearer.

Now the supervisor gathers at most once every `GATHER_EVERY` (0.1 s) per
kind of answer: requests that came before a gathering started get its
answer, so every answer is still taken after its request arrived.
"""

from __future__ import annotations

import http.client
import json

import pytest

from tests.conftest import HubServer
from tests.hostile.harness import flood_connections, ipc_requests

pytestmark = pytest.mark.e2e

CONNECTIONS = 16
SECONDS = 3.0


def _stats_asked(srv: HubServer) -> int:
    """How many times the supervisor asked a child for its figures."""
    return ipc_requests(srv, "stats")


def test_a_runtime_flood_asks_the_children_a_bounded_number_of_times(hub: HubServer) -> None:
    asked = _stats_asked(hub)
    answers = [0] * CONNECTIONS

    def one(i: int, conn: http.client.HTTPConnection) -> None:
        conn.request("GET", "/api/v1/runtime?extra=1" if i % 2 else "/api/v1/runtime")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 200 and "rtsp" in body
        answers[i] += 1

    flood_connections(hub.port, CONNECTIONS, SECONDS, one)
    assert all(answers) and sum(answers) >= 100, answers
    children = hub.expected_processes() - 1
    # Two kinds of answer (with and without `extra`), each gathered at most
    # every 0.1 s from every child (and a few gatherings' worth of slack).
    bound = children * 2 * (SECONDS / 0.1 + 5)
    stats = _stats_asked(hub) - asked
    assert stats <= bound, f"{sum(answers)} answers asked the children {stats} times"
    # Still fresh: a request after a change sees it.
    before = hub.get_json("/api/v1/runtime?extra=1")
    assert len(before["extra"]["processes"]) == children + 1
    assert hub.get_json("/api/v1/runtime")["on"] > before["on"]
