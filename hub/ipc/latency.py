"""How long IPC requests take, per method: a histogram each process keeps.

`IpcChannel.request` observes every request it made (answered, failed or
timed out) into `REQUEST_LATENCY`; the process reports `snapshot()` with
its metrics and the supervisor sums the tree's into
`ipchub_ipc_request_seconds`. Plain counts, no locks: one event loop per
process.
"""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds (seconds, inclusive) of the buckets; one more for +Inf.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LatencyHistogram:
    """Per method: a count per bucket (not cumulative), then the sum of seconds."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = {}

    def observe(self, method: str, seconds: float) -> None:
        row = self.rows.get(method)
        if row is None:
            row = self.rows[method] = [0] * (len(BUCKETS) + 1) + [0.0]
        row[bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

    def snapshot(self) -> dict[str, list[float]]:
        """{method: [count per bucket ..., +Inf count, sum of seconds]} (copies)."""
        return {m: list(row) for m, row in self.rows.items()}


#: This process's requests. Method names come from our own code (hub.ipc.messages
#: and the handlers), so the table stays small.
REQUEST_LATENCY = LatencyHistogram()
