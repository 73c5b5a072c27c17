"""`/metrics`: the whole tree in Prometheus text format, gathered on scrape.

A front answers `GET /metrics` by asking the supervisor (`metrics` IPC
request). The supervisor asks every child for its plain counters (each
child's `metrics` handler), adds them to its totals (`hub.supervisor.tally`:
monotonic across a child's restart, paths bounded), reads every process's
CPU, memory and open files with psutil, and renders it all with
prometheus-client through one custom collector. Nothing is counted per
packet for this: children sum what their objects already count.

`FAMILIES` is the list of metrics; deploy/README.md documents it and the
Grafana dashboard's test checks its queries against `METRICS`.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import psutil

from ..ipc import messages as M
from ..ipc.latency import BUCKETS, REQUEST_LATENCY
from ..ipc.messages import ChildReport
from .tally import Key, Tally

if TYPE_CHECKING:
    from prometheus_client.core import CollectorRegistry, Metric

    from .tree import ProcessTree

#: The text format prometheus-client's generate_latest writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How long a scrape waits for a child's counters.
CHILD_TIMEOUT = 2.0


@dataclass(frozen=True)
class Family:
    name: str  # as exposed, without a counter's `_total`
    kind: str  # "counter", "gauge" or "histogram"
    labels: tuple[str, ...]
    help: str
    key: str = ""  # what the processes report it under (ChildReport)
    #: Label values shown even at zero, so a query finds the series.
    known: tuple[tuple[str, ...], ...] = ()


PLAYER_PROTOCOLS = ("rtsp", "flv", "wsflv", "hls", "wsp", "rtsp-ws", "tunnel", "rtmp", "whep")
PULL_STATES = ("connecting", "live", "backoff")
LIMITS = ("players_per_stream", "players", "publishers", "connections_per_ip")

FAMILIES: tuple[Family, ...] = (
    Family("ipchub_up", "gauge", (), "1 while the supervisor answers"),
    Family("ipchub_draining", "gauge", (), "1 from SIGTERM until exit"),
    Family("ipchub_streams_live", "gauge", (), "Streams with a live source (publisher or pull)", "streams_live"),
    Family("ipchub_publishers", "gauge", ("protocol",), "Publishers connected, by protocol", "publishers",
           (("rtsp",), ("rtmp",), ("whip",))),
    Family("ipchub_pulls", "gauge", ("state",), "Route pulls by state", "pulls",
           tuple((s,) for s in PULL_STATES)),
    Family("ipchub_pull_reconnects", "counter", (), "Route pulls reconnected after a failure",
           "pull_reconnects"),
    Family("ipchub_players", "gauge", ("protocol",), "Players connected, by protocol", "players",
           tuple((p,) for p in PLAYER_PROTOCOLS)),
    Family("ipchub_player_sessions", "counter", ("protocol",), "Player sessions started, by protocol",
           "player_sessions", tuple((p,) for p in PLAYER_PROTOCOLS)),
    Family("ipchub_stream_bytes_in", "counter", ("path",), "Bytes received from a stream's source"),
    Family("ipchub_stream_bytes_out", "counter", ("path",), "Bytes sent to a stream's players"),
    Family("ipchub_rtp_packets_lost", "counter", (), "RTP packets missing from sources (sequence gaps)",
           "rtp_lost"),
    Family("ipchub_rtp_packets_dropped", "counter", (), "RTP packets dropped as malformed or unusable",
           "rtp_dropped"),
    Family("ipchub_player_skips", "counter", (), "Slow players skipped ahead to a keyframe", "player_skips"),
    Family("ipchub_player_aborts", "counter", (), "Players closed for being stuck too long", "player_aborts"),
    Family("ipchub_ring_laps", "counter", (), "Readers lapped by a ring's writer", "ring_laps"),
    Family("ipchub_hls_viewers_evicted", "counter", (), "HLS viewers ended early: a front's viewer table was full",
           "hls_evicted"),
    Family("ipchub_hls_segmenters", "gauge", (), "HLS segmenters running", "hls_segmenters"),
    Family("ipchub_recordings", "gauge", (), "Streams being recorded", "recordings"),
    Family("ipchub_recording_errors", "counter", (), "Recordings stopped by a failed write (disk full, no permission)",
           "recording_errors"),
    Family("ipchub_api_requests", "counter", ("route", "status"), "REST API requests by route and status",
           "api_requests"),
    Family("ipchub_login_failures", "counter", (), "Failed logins (API and RTSP credentials)",
           "login_failures"),
    Family("ipchub_ipc_request_seconds", "histogram", ("method",), "IPC request latency between processes"),
    Family("ipchub_process_cpu_seconds", "counter", ("process",), "CPU time per process", "process_cpu"),
    Family("ipchub_process_resident_memory_bytes", "gauge", ("process",), "Resident memory per process",
           "process_rss"),
    Family("ipchub_process_open_fds", "gauge", ("process",), "Open file descriptors per process",
           "process_fds"),
    Family("ipchub_child_restarts", "counter", ("process",), "Restarts of a child by the supervisor",
           "child_restarts"),
    Family("ipchub_limit_refusals", "counter", ("limit",), "Clients refused by a limit", "limit_refusals",
           tuple((n,) for n in LIMITS)),
)


def exposed_name(f: Family) -> str:
    return f.name + "_total" if f.kind == "counter" else f.name


#: Every metric's exposed name and its labels (deploy/README.md, the dashboard test).
METRICS: dict[str, set[str]] = {exposed_name(f): set(f.labels) for f in FAMILIES}
HISTOGRAMS = frozenset(f.name for f in FAMILIES if f.kind == "histogram")


class TreeCollector:
    """prometheus-client collector over the supervisor's totals (no I/O:
    `TreeMetrics.scrape` gathers first, then renders through this)."""

    def __init__(self, metrics: TreeMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        m = self.metrics
        tally = m.tally
        gauges = tally.gauges()
        for f in FAMILIES:
            if f.name == "ipchub_up":
                yield GaugeMetricFamily(f.name, f.help, value=1)
            elif f.name == "ipchub_draining":
                yield GaugeMetricFamily(f.name, f.help, value=1 if m.draining else 0)
            elif f.name in ("ipchub_stream_bytes_in", "ipchub_stream_bytes_out"):
                from prometheus_client.core import CounterMetricFamily

                fam = CounterMetricFamily(f.name, f.help, labels=f.labels)
                incoming = f.name.endswith("_in")
                for path, b_in, b_out in tally.paths.series():
                    fam.add_metric([path], b_in if incoming else b_out)
                yield fam
            elif f.kind == "histogram":
                yield self._histogram(f, tally.hist)
            else:
                source = tally.counters if f.kind == "counter" else gauges
                yield _family(f, source)

    @staticmethod
    def _histogram(f: Family, rows: dict[str, list[float]]) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        fam = HistogramMetricFamily(f.name, f.help, labels=f.labels)
        bounds = [*(repr(float(b)) for b in BUCKETS), "+Inf"]
        for method, row in sorted(rows.items()):
            running = 0.0
            buckets = []
            for bound, n in zip(bounds, row[:-1]):
                running += n
                buckets.append((bound, running))
            fam.add_metric([method], buckets, sum_value=row[-1])
        return fam


def _family(f: Family, source: dict[Key, float]) -> Metric:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    fam: CounterMetricFamily | GaugeMetricFamily
    if f.kind == "counter":
        fam = CounterMetricFamily(f.name, f.help, labels=f.labels)
    else:
        fam = GaugeMetricFamily(f.name, f.help, labels=f.labels)
    values: dict[tuple[str, ...], float] = {k: 0.0 for k in f.known}
    if not f.labels:
        values[()] = 0.0
    for (key, labels), v in source.items():
        if key == f.key and len(labels) == len(f.labels):
            values[labels] = values.get(labels, 0.0) + v
    for labels, v in sorted(values.items()):
        fam.add_metric(list(labels), v)
    return fam


class TreeMetrics:
    """The supervisor's side of `/metrics`: gather, total, render."""

    def __init__(self, tree: ProcessTree, max_paths: int) -> None:
        self.tree = tree
        self.tally = Tally(max_paths)
        self.draining = False
        #: The supervisor's own counters (login failures, refusals), in the report shape.
        self.own: dict[str, dict[str, float]] = {}
        #: Made at the first scrape: prometheus-client is imported only
        #: by a supervisor that is scraped.
        self._registry: CollectorRegistry | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._lock = asyncio.Lock()

    def count(self, key: str, label: str = "", n: float = 1) -> None:
        """One of the supervisor's own counters (a refusal, a failed login)."""
        row = self.own.setdefault(key, {})
        row[label] = row.get(label, 0.0) + n

    async def scrape(self) -> bytes:
        """Ask every child, add up, render. Scrapes run one at a time."""
        async with self._lock:
            replies = await self.tree.request_all(M.METRICS({}), timeout=CHILD_TIMEOUT)
            now = time.monotonic()
            for child, report in replies:
                if child.pid is not None:
                    self.tally.update((child.pid, "child"), report, now)
            own = os.getpid()
            self.tally.update((own, "self"), self._own_report(), now)
            names = {own: "supervisor"}
            live = set(self.tree.pids())
            for c in self.tree.children:
                if c.pid is not None and c.pid in live:
                    names[c.pid] = c.name
            for pid, proc_report in self._process_reports(names).items():
                self.tally.update((pid, "proc"), proc_report, now)
            self.tally.forget(set(names))
            return self.render()

    @property
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            from prometheus_client.core import CollectorRegistry

            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(TreeCollector(self))
        return self._registry

    def render(self) -> bytes:
        from prometheus_client.exposition import generate_latest

        return generate_latest(self.registry)

    def _own_report(self) -> ChildReport:
        counters: dict[str, object] = {}
        for key, row in self.own.items():
            counters[key] = row.get("", 0.0) if list(row) == [""] else dict(row)
        counters["child_restarts"] = {c.name: float(c.restarts) for c in self.tree.children}
        return {"c": counters, "h": REQUEST_LATENCY.snapshot()}

    def _process_reports(self, names: dict[int, str]) -> dict[int, ChildReport]:
        """CPU seconds, resident memory and open files of each process (psutil)."""
        out: dict[int, ChildReport] = {}
        for pid, name in names.items():
            p = self._procs.get(pid)
            try:
                if p is None:
                    p = self._procs[pid] = psutil.Process(pid)
                with p.oneshot():
                    t = p.cpu_times()
                    rss = p.memory_info().rss
                    fds = p.num_fds()
            except psutil.Error:
                continue
            out[pid] = {"c": {"process_cpu": {name: t.user + t.system}},
                        "g": {"process_rss": {name: rss}, "process_fds": {name: fds}}}
        self._procs = {pid: p for pid, p in self._procs.items() if pid in names}
        return out
