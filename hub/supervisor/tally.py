"""The tree's counters, kept monotonic by the supervisor.

Each child answers the `metrics` request with plain numbers (the wire shape
is `ChildReport`): counters that only grow while that process lives,
gauges, bytes per stream path, and its IPC latency histogram. The
supervisor keeps, per process id, the last values it saw and adds only the
growth since then to its own totals. So a child that dies and is replaced
(a new pid, starting from zero) never makes a total go back: the dead
child's counts up to its last scrape stay in the totals, and the new child
adds from zero. A count that shrinks within one process (an object it
summed has ended) adds nothing and is the new base.

Bytes per path are bounded (`PathTotals`): at most `max_paths` paths keep
a series of their own; the bytes of the others are summed under `_other`.
"""

from __future__ import annotations

from typing import Any

from ..ipc.messages import LABEL_SEP, ChildReport

#: The label value that sums the paths beyond `metrics.max_paths`.
OTHER_PATH = "_other"
#: A path with a series of its own that has not grown for this long gives
#: its series up to a new path (its bytes move to `_other`).
PATH_IDLE = 300.0

#: (report key, label values) -> value
Key = tuple[str, tuple[str, ...]]
#: Who reported: (process id, what part of it), e.g. (pid, "child") for a
#: child's own report, (pid, "proc") for what psutil says of it.
Source = tuple[int, str]


def flatten(group: dict[str, Any]) -> dict[Key, float]:
    """{key: n} / {key: {labels: n}} -> {(key, label values): n}."""
    out: dict[Key, float] = {}
    for key, v in group.items():
        if isinstance(v, dict):
            for labels, n in v.items():
                out[(key, tuple(str(labels).split(LABEL_SEP)))] = float(n)
        else:
            out[(key, ())] = float(v)
    return out


class PathTotals:
    """Bytes in and out per stream path, at most `max_paths` of them by name.

    A path gets its own series when it first grows and there is room, or
    when the least recently grown path has been quiet for PATH_IDLE seconds
    (its bytes then move to `_other`, so the sum over all series never goes
    back). Otherwise its growth is added to `_other`.
    """

    def __init__(self, max_paths: int) -> None:
        self.max_paths = max_paths
        #: path -> [bytes in, bytes out, last growth]; oldest growth first.
        self.rows: dict[str, list[float]] = {}
        self.other = [0.0, 0.0]

    def add(self, path: str, d_in: float, d_out: float, now: float) -> None:
        if d_in <= 0 and d_out <= 0:
            return
        row = self.rows.pop(path, None)
        if row is None and len(self.rows) >= self.max_paths:
            oldest = next(iter(self.rows))
            if now - self.rows[oldest][2] >= PATH_IDLE:
                gone = self.rows.pop(oldest)
                self.other[0] += gone[0]
                self.other[1] += gone[1]
            else:
                self.other[0] += max(0.0, d_in)
                self.other[1] += max(0.0, d_out)
                return
        if row is None:
            row = [0.0, 0.0, now]
        row[0] += max(0.0, d_in)
        row[1] += max(0.0, d_out)
        row[2] = now
        self.rows[path] = row  # re-inserted: the most recent growth is last

    def series(self) -> list[tuple[str, float, float]]:
        """(path, bytes in, bytes out) for every path with a series, `_other` last."""
        out = [(p, r[0], r[1]) for p, r in sorted(self.rows.items())]
        if self.other[0] or self.other[1]:
            out.append((OTHER_PATH, self.other[0], self.other[1]))
        return out


class Tally:
    """Totals over the tree's processes (see the module's docstring)."""

    def __init__(self, max_paths: int) -> None:
        self.counters: dict[Key, float] = {}
        self.paths = PathTotals(max_paths)
        self.hist: dict[str, list[float]] = {}
        self._last_counters: dict[Source, dict[Key, float]] = {}
        self._last_paths: dict[Source, dict[str, list[float]]] = {}
        self._last_hist: dict[Source, dict[str, list[float]]] = {}
        self._gauges: dict[Source, dict[Key, float]] = {}

    def update(self, source: Source, report: ChildReport, now: float) -> None:
        """One report: its counters' growth since the source's last one goes
        into the totals; its gauges replace the source's last ones."""
        counters = flatten(report.get("c", {}))
        last = self._last_counters.get(source, {})
        for key, v in counters.items():
            d = v - last.get(key, 0.0)
            if d > 0:
                self.counters[key] = self.counters.get(key, 0.0) + d
        self._last_counters[source] = counters

        paths = {str(p): [float(v[0]), float(v[1])] for p, v in report.get("p", {}).items()}
        last_p = self._last_paths.get(source, {})
        for path, (b_in, b_out) in paths.items():
            prev = last_p.get(path, (0.0, 0.0))
            self.paths.add(path, b_in - prev[0], b_out - prev[1], now)
        self._last_paths[source] = paths

        hist = {str(m): [float(x) for x in row] for m, row in report.get("h", {}).items()}
        last_h = self._last_hist.get(source, {})
        for method, row in hist.items():
            prev_row = last_h.get(method)
            acc = self.hist.get(method)
            if acc is None:
                acc = self.hist[method] = [0.0] * len(row)
            if len(acc) != len(row):
                continue  # another bucket layout (a different build): not mixed in
            for i, v in enumerate(row):
                d = v - (prev_row[i] if prev_row is not None and len(prev_row) == len(row) else 0.0)
                if d > 0:
                    acc[i] += d
        self._last_hist[source] = hist

        self._gauges[source] = flatten(report.get("g", {}))

    def forget(self, live_pids: set[int]) -> None:
        """Processes that ended: their gauges go; their counted growth stays."""
        for table in (self._last_counters, self._last_paths, self._last_hist, self._gauges):
            for source in [s for s in table if s[0] not in live_pids]:
                del table[source]

    def gauges(self) -> dict[Key, float]:
        """Gauges summed over the live processes."""
        out: dict[Key, float] = {}
        for g in self._gauges.values():
            for key, v in g.items():
                out[key] = out.get(key, 0.0) + v
        return out
