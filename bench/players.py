"""Load generator that can find the server's ceiling: N players over HTTP-FLV,
WS-FLV or RTSP/TCP, spread over K processes so the server, not the client,
runs out first.

    python bench/players.py URL [--n 2000] [--procs 4] [--seconds 10]
                                [--mode http-flv|ws-flv|rtsp] [--rate BYTES_PER_S] [--server-pid PID]

URL is the stream's HTTP-FLV URL (`http://host:port/streams/PATH.flv`) or its
RTSP URL. Each load process (uvloop) does the protocol's handshake with raw
sockets and then only counts bytes (bench/_clients.py); nothing is parsed.
A player "kept up" if it received >= 95% of the stream's byte rate over the
window; without --rate that rate is first measured with one player. Prints
players held, each load process's CPU (% of one core) and, with
--server-pid, the server tree's CPU per player-frame.

As a library (bench/fanout.py, bench/rtsp.py, bench/footprint.py):
`PlayerPool(...)` starts the processes and holds the players until
`close()`; `measure(pool, seconds, server_pids)` gives a `Window`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FPS, PY, cpu_seconds  # noqa: E402

ALIASES = {"http": "http-flv", "ws": "ws-flv", "http-flv": "http-flv", "ws-flv": "ws-flv", "rtsp": "rtsp"}
KEEP_UP = 0.95


# -- one load process ------------------------------------------------------------------
async def _worker(proto: str, host: str, port: int, paths: list[str], n: int) -> None:
    import _clients as cl

    counters = [cl.Counter() for _ in range(n)]
    players: list[cl.Player] = []
    errors: dict[str, int] = {}

    async def one(i: int) -> None:
        try:
            players.append(await cl.open_player(proto, host, port, paths[i % len(paths)], counters[i]))
        except cl.ClientError as e:
            errors[e.kind] = errors.get(e.kind, 0) + 1

    for i in range(0, n, 50):
        await asyncio.gather(*(one(j) for j in range(i, min(n, i + 50))))
    _say({"ready": len(players), "errors": errors})
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while (await stdin.readline()).strip() == b"mark":
        _say({"t": time.monotonic(), "cpu": time.process_time(), "bytes": [c.bytes for c in counters],
              "lost": sum(1 for p in players if p.lost.done())})
    for p in players:
        p.close()


def _say(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- the parent's side --------------------------------------------------------------------
class PlayerPool:
    """N players of `paths` (round robin) over `procs` load processes."""

    def __init__(self, proto: str, host: str, port: int, paths: list[str], n: int, procs: int = 1) -> None:
        self.proto = ALIASES.get(proto, proto)
        self.n = n
        k = max(1, min(procs, n))
        self.workers: list[subprocess.Popen[str]] = []
        for i in range(k):
            share = n // k + (1 if i < n % k else 0)
            self.workers.append(subprocess.Popen(
                [PY, __file__, "--worker", self.proto, host, str(port), ",".join(paths), str(share)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        self.connected = 0
        self.errors: dict[str, int] = {}

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def ready(self) -> int:
        """Wait until every process has tried all its players; how many play."""
        for w in self.workers:
            got = json.loads(self._line(w))
            self.connected += got["ready"]
            for k, v in got["errors"].items():
                self.errors[k] = self.errors.get(k, 0) + v
        return self.connected

    def mark(self) -> list[dict[str, Any]]:
        for w in self.workers:
            assert w.stdin is not None
            w.stdin.write("mark\n")
            w.stdin.flush()
        return [json.loads(self._line(w)) for w in self.workers]

    @staticmethod
    def _line(w: subprocess.Popen[str]) -> str:
        assert w.stdout is not None
        line = w.stdout.readline()
        if not line:
            raise SystemExit(f"load process {w.pid} ended (exit {w.wait()})")
        return line

    def close(self) -> None:
        for w in self.workers:
            try:
                assert w.stdin is not None
                w.stdin.close()  # EOF: the process closes its players and exits
            except OSError:
                pass
        for w in self.workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()

    def __enter__(self) -> PlayerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Window:
    """One measured window: per-player bytes, per-process client CPU."""

    elapsed: float
    bytes: list[int]
    lost: int
    client_cpu: list[float]  # each load process, fraction of one core
    server_cpu: float  # CPU seconds of server_pids over the window
    wall: float

    def held(self, rate: float) -> int:
        return sum(1 for b in self.bytes if b >= KEEP_UP * rate * self.elapsed)

    def server_us_per_player_frame(self, fps: int = FPS) -> float:
        return self.server_cpu / max(1, len(self.bytes) * fps * self.wall) * 1e6

    def client_text(self) -> str:
        return "+".join(f"{100 * c:.0f}" for c in self.client_cpu) + "%"


def measure(pool: PlayerPool, seconds: float, server_pids: list[int] | None = None) -> Window:
    c0, w0 = cpu_seconds(server_pids or []), time.monotonic()
    m0 = pool.mark()
    time.sleep(seconds)
    m1 = pool.mark()
    c1, w1 = cpu_seconds(server_pids or []), time.monotonic()
    got: list[int] = []
    for a, b in zip(m0, m1):
        got += [y - x for x, y in zip(a["bytes"], b["bytes"])]
    elapsed = sum(b["t"] - a["t"] for a, b in zip(m0, m1)) / len(m0)
    cpu = [(b["cpu"] - a["cpu"]) / max(1e-9, b["t"] - a["t"]) for a, b in zip(m0, m1)]
    return Window(elapsed, got, sum(b["lost"] for b in m1), cpu, c1 - c0, w1 - w0)


def stream_rate(proto: str, host: str, port: int, path: str, seconds: float) -> float:
    """Bytes per second one player of this protocol receives."""
    with PlayerPool(proto, host, port, [path], 1) as one:
        if one.ready() != 1:
            raise SystemExit(f"one {proto} player could not play {path}: {one.errors}")
        time.sleep(1.0)
        w = measure(one, seconds)
    return w.bytes[0] / w.elapsed


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, stream path) of an HTTP-FLV, WS-FLV or RTSP URL."""
    u = urlsplit(url)
    path = u.path
    if u.scheme in ("http", "https", "ws", "wss"):
        path = path.removeprefix("/streams").removeprefix("/ws").removesuffix(".flv")
    return u.hostname or "127.0.0.1", u.port or 1554, path


def tree_pids(pid: int) -> list[int]:
    try:
        return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        import uvloop

        w_proto, w_host, w_port, w_paths, w_n = sys.argv[2:7]
        uvloop.run(_worker(w_proto, w_host, int(w_port), w_paths.split(","), int(w_n)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--mode", default="http-flv", choices=sorted(ALIASES))
    ap.add_argument("--rate", type=float, default=0.0, help="the stream's bytes per second (default: measured)")
    ap.add_argument("--server-pid", type=int, default=0, help="the server's supervisor: its tree's CPU is printed")
    args = ap.parse_args()
    host, port, path = split_url(args.url)
    rate = args.rate or stream_rate(args.mode, host, port, path, min(args.seconds, 5.0))
    with PlayerPool(args.mode, host, port, [path], args.n, args.procs) as pool:
        t0 = time.monotonic()
        connected = pool.ready()
        print(f"{connected}/{args.n} {pool.proto} players connected in {time.monotonic() - t0:.1f} s "
              f"over {len(pool.workers)} processes; refused: {pool.errors or 'none'}", flush=True)
        time.sleep(2.0)  # the cached GOP's burst is not the stream's rate
        w = measure(pool, args.seconds, tree_pids(args.server_pid) if args.server_pid else None)
    print(f"stream {rate * 8 / 1e6:.2f} Mbit/s; held {w.held(rate)}/{len(w.bytes)} (>= {KEEP_UP:.0%} of it) "
          f"over {w.elapsed:.1f} s; lost {w.lost}; client CPU per process {w.client_text()}")
    if args.server_pid:
        print(f"server tree: {100 * w.server_cpu / w.wall:.1f}% of a core, "
              f"{w.server_us_per_player_frame():.2f} us per player-frame ({FPS} fps)")


if __name__ == "__main__":
    main()
