"""The supervisor's totals: monotonic across a child's restart, per-path
series bounded, histograms summed (hub.supervisor.tally)."""

from __future__ import annotations

from typing import Any

from hub.supervisor.tally import OTHER_PATH, PATH_IDLE, PathTotals, Tally


def report(sessions: float = 0, bytes_out: dict[str, float] | None = None, players: float = 0,
           hist: list[float] | None = None) -> Any:
    out: dict[str, Any] = {"c": {"player_sessions": {"flv": sessions}},
                           "g": {"players": {"flv": players}},
                           "p": {p: [0, n] for p, n in (bytes_out or {}).items()}}
    if hist is not None:
        out["h"] = {"open_stream": hist}
    return out


def test_growth_is_added_and_a_restart_does_not_go_back() -> None:
    t = Tally(max_paths=10)
    t.update((100, "child"), report(3, {"/a": 1000}, players=2), now=0)
    t.update((100, "child"), report(5, {"/a": 1500}, players=2), now=1)
    assert t.counters[("player_sessions", ("flv",))] == 5
    # front-0 (pid 100) is killed; its replacement (pid 200) starts at zero.
    t.forget({200})
    assert t.gauges() == {}  # a dead process's gauges go
    t.update((200, "child"), report(1, {"/a": 300}, players=1), now=2)
    assert t.counters[("player_sessions", ("flv",))] == 6
    assert t.paths.series() == [("/a", 0.0, 1800.0)]
    assert t.gauges() == {("players", ("flv",)): 1.0}


def test_a_count_that_shrinks_in_one_process_adds_nothing_and_is_the_new_base() -> None:
    t = Tally(max_paths=10)
    t.update((1, "child"), report(10), now=0)
    t.update((1, "child"), report(7), now=1)  # an object that counted ended
    assert t.counters[("player_sessions", ("flv",))] == 10
    t.update((1, "child"), report(9), now=2)
    assert t.counters[("player_sessions", ("flv",))] == 12


def test_a_path_gone_from_a_report_counts_from_zero_when_it_comes_back() -> None:
    """A child forgets a path once reported (its players left): the bytes
    are in the totals, and the path's next bytes are new bytes."""
    t = Tally(max_paths=10)
    t.update((1, "child"), report(bytes_out={"/a": 1000}), now=0)
    t.update((1, "child"), report(bytes_out={}), now=1)
    t.update((1, "child"), report(bytes_out={"/a": 200}), now=2)
    assert t.paths.series() == [("/a", 0.0, 1200.0)]


def test_gauges_sum_over_processes() -> None:
    t = Tally(max_paths=10)
    t.update((1, "child"), report(players=3), now=0)
    t.update((2, "child"), report(players=4), now=0)
    assert t.gauges() == {("players", ("flv",)): 7.0}


def test_histograms_add_growth_per_bucket() -> None:
    t = Tally(max_paths=10)
    t.update((1, "child"), report(hist=[1, 0, 2, 0.5]), now=0)
    t.update((1, "child"), report(hist=[2, 0, 2, 0.75]), now=1)
    t.forget({2})
    t.update((2, "child"), report(hist=[0, 1, 0, 1.0]), now=2)
    assert t.hist["open_stream"] == [2, 1, 2, 1.75]


def test_paths_beyond_the_bound_are_summed_under_other() -> None:
    p = PathTotals(max_paths=2)
    p.add("/a", 10, 1, now=0)
    p.add("/b", 20, 2, now=0)
    p.add("/c", 30, 3, now=1)  # no room, /a and /b are not idle
    p.add("/a", 5, 0, now=2)
    assert p.series() == [("/a", 15, 1), ("/b", 20, 2), (OTHER_PATH, 30, 3)]
    # /b has been quiet for PATH_IDLE: a new path takes its place, its bytes move to _other.
    p.add("/d", 1, 1, now=PATH_IDLE + 1)
    assert p.series() == [("/a", 15, 1), ("/d", 1, 1), (OTHER_PATH, 50, 5)]
    total_in = sum(row[1] for row in p.series())
    assert total_in == 10 + 20 + 30 + 5 + 1  # nothing lost, nothing twice


def test_sum_over_paths_never_goes_back() -> None:
    p = PathTotals(max_paths=3)
    last = 0.0
    for i in range(200):
        p.add(f"/s{i % 17}", 7, 3, now=i * 40.0)
        total = sum(row[1] + row[2] for row in p.series())
        assert total >= last
        last = total
        assert len(p.series()) <= 4  # max_paths plus _other
    assert last == 200 * 10
