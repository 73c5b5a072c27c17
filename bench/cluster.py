"""Three nodes behind one Redis: players held per node, and what a relay costs.

    python bench/cluster.py [--players 100] [--seconds 10] [--procs 2]
                            [--shards 1] [--fronts 1] [--bitrate 2M]

Starts a redis-server (a temp folder, AOF on, `appendfsync always`) and
three server trees on loopback (`--cluster`, `--node-name a|b|c`,
`--advertise`), pushes one stream (ffmpeg, H.264 + AAC, 720p at --bitrate)
to node a, then:

1. The relay's cost on the owner: node a's tree CPU over a window with no
   player anywhere, then with one HTTP-FLV player on b (b relays from a),
   then with one on c too (two relays); the difference per relaying node,
   beside what one local RTSP/TCP player on a costs (a relay is one RTSP
   consumer of the owner), and what relaying costs the relaying node.
2. `--players` HTTP-FLV players on each node at once (bench/players.py's
   load processes, `--procs` per node): players held per node (>= 95% of
   the stream's byte rate over the window), each node's CPU and Redis's.

Ends every process it started, by PID.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HOST, PY, ROOT, HubTree, Procs, cpu_seconds, free_port, machine_note, make_media,  # noqa: E402
                     push, report_leftovers, wait_http, wait_port)
from players import PlayerPool, Window, stream_rate  # noqa: E402

PATH = "/live/bench"


class Redis:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        folder = work / "redis"
        folder.mkdir()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", HOST, "--dir", str(folder), "--appendonly", "yes",
             "--appendfsync", "always", "--save", "", "--logfile", str(folder / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        wait_port(self.port)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


class Node(HubTree):
    """A HubTree joined to the cluster: its port is known before it starts (--advertise)."""

    def __init__(self, work: Path, name: str, redis_url: str, shards: int, fronts: int) -> None:
        work.mkdir()
        self.name = name
        self.work = work
        self.port = free_port()
        self.shards, self.fronts = shards, fronts
        self.log_path = work / "hub.log"
        argv = [PY, "-m", "hub", "--listen", f"{HOST}:{self.port}", "--data", str(work / "data"),
                "--log-level", "warning", "--shards", str(shards), "--fronts", str(fronts),
                "--cluster", redis_url, "--node-name", name, "--advertise", f"{HOST}:{self.port}"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env={"HUB_ADMIN_PASSWORD": "admin", **os.environ})
        self.pid = self.proc.pid

    def url(self, path: str = PATH) -> str:
        return f"http://{HOST}:{self.port}/streams{path}.flv"


def tree_cpu(node: HubTree, seconds: float) -> float:
    """The node's tree CPU over `seconds`, in % of one core."""
    pids = node.pids()
    c0, t0 = cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pids) - c0) / (time.monotonic() - t0)


def one_player(proto: str, node: Node) -> PlayerPool:
    pool = PlayerPool(proto, HOST, node.port, [PATH], 1)
    if pool.ready() != 1:
        raise SystemExit(f"a {proto} player on {node.name} could not play: {pool.errors}")
    return pool


def relay_cost(a: Node, b: Node, c: Node, seconds: float) -> None:
    time.sleep(2.0)
    base_a, base_b = tree_cpu(a, seconds), tree_cpu(b, seconds)
    on_b = one_player("http-flv", b)
    time.sleep(2.0)
    one_a, one_b = tree_cpu(a, seconds), tree_cpu(b, seconds)
    on_c = one_player("http-flv", c)
    time.sleep(2.0)
    two_a = tree_cpu(a, seconds)
    on_b.close()
    on_c.close()
    local = one_player("rtsp", a)
    time.sleep(2.0)
    rtsp_a = tree_cpu(a, seconds)
    local.close()
    print(f"owner a, publisher only: {base_a:.1f}% of a core; relaying node b idle: {base_b:.1f}%", flush=True)
    print(f"owner a with 1 relay: {one_a:.1f}% (+{one_a - base_a:.1f}); with 2 relays: {two_a:.1f}% "
          f"(+{(two_a - base_a) / 2:.1f} per relaying node)", flush=True)
    print(f"owner a with 1 local RTSP/TCP player instead: {rtsp_a:.1f}% (+{rtsp_a - base_a:.1f})", flush=True)
    print(f"relaying node b with its one player: {one_b:.1f}% (+{one_b - base_b:.1f}: the relay's ingest, "
          f"its ring and the player)", flush=True)


def measure_all(pools: list[PlayerPool], seconds: float) -> list[Window]:
    """One window for every pool at once (bench/players.py's `measure` does one pool)."""
    m0 = [p.mark() for p in pools]
    time.sleep(seconds)
    m1 = [p.mark() for p in pools]
    out = []
    for a_marks, b_marks in zip(m0, m1):
        got: list[int] = []
        for a, b in zip(a_marks, b_marks):
            got += [y - x for x, y in zip(a["bytes"], b["bytes"])]
        elapsed = sum(b["t"] - a["t"] for a, b in zip(a_marks, b_marks)) / len(a_marks)
        cpu = [(b["cpu"] - a["cpu"]) / max(1e-9, b["t"] - a["t"]) for a, b in zip(a_marks, b_marks)]
        out.append(Window(elapsed, got, sum(b["lost"] for b in b_marks), cpu, 0.0, elapsed))
    return out


def spread(nodes: list[Node], redis: Redis, players: int, procs: int, seconds: float) -> None:
    rate = stream_rate("http-flv", HOST, nodes[0].port, PATH, 8.0)
    pools = [PlayerPool("http-flv", HOST, n.port, [PATH], players, procs) for n in nodes]
    try:
        connected = [p.ready() for p in pools]
        time.sleep(3.0)  # past the cached GOP's burst
        pids = {n.name: n.pids() for n in nodes}
        c0 = {k: cpu_seconds(v) for k, v in pids.items()}
        r0, t0 = cpu_seconds([redis.pid]), time.monotonic()
        windows = measure_all(pools, seconds)
        wall = time.monotonic() - t0
        cpu = {k: 100 * (cpu_seconds(v) - c0[k]) / wall for k, v in pids.items()}
        redis_cpu = 100 * (cpu_seconds([redis.pid]) - r0) / wall
    finally:
        for p in pools:
            p.close()
    print(f"stream {rate * 8 / 1e6:.2f} Mbit/s; {players} HTTP-FLV players asked of each node", flush=True)
    for n, w, got in zip(nodes, windows, connected):
        mean = sum(w.bytes) / max(1, len(w.bytes)) / max(1e-9, w.elapsed)
        print(f"node {n.name}: {got} connected, held {w.held(rate)}/{len(w.bytes)} over {w.elapsed:.1f} s "
              f"(mean {mean * 8 / 1e6:.2f} Mbit/s each); "
              f"tree CPU {cpu[n.name]:.0f}% of a core; load processes {w.client_text()}", flush=True)
    print(f"redis-server: {redis_cpu:.1f}% of a core", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--players", type=int, default=100, help="HTTP-FLV players per node")
    ap.add_argument("--procs", type=int, default=1, help="load processes per node")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--fronts", type=int, default=1)
    ap.add_argument("--bitrate", default="2M")
    args = ap.parse_args()
    if shutil.which("redis-server") is None or shutil.which("ffmpeg") is None:
        raise SystemExit("needs redis-server and ffmpeg (make sysdeps)")
    print(machine_note(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    procs = Procs()
    try:
        media = make_media(work, bitrate=args.bitrate)
        redis = Redis(work)
        procs.add(redis.proc)
        nodes = [procs.add(Node(work / n, n, redis.url, args.shards, args.fronts)) for n in "abc"]
        for n in nodes:
            n.wait_ready()
        procs.add(push(media, f"rtsp://{HOST}:{nodes[0].port}{PATH}"))
        wait_http(nodes[0].url())
        print(f"3 nodes ({args.shards} shard, {args.fronts} front each), one {args.bitrate}bit/s 720p stream "
              f"pushed to a", flush=True)
        relay_cost(nodes[0], nodes[1], nodes[2], seconds=args.seconds)
        spread(nodes, redis, args.players, args.procs, args.seconds)
    finally:
        left = procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        report_leftovers(left)
        for p in psutil.Process().children(recursive=True):  # none should be left: say so if one is
            print(f"WARNING: child {p.pid} still running", flush=True)


if __name__ == "__main__":
    main()
