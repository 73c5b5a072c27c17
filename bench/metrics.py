"""What `/metrics` costs: scrape time and the tree's CPU per scrape, with
many streams and players; the same for the API's stream listing
(`GET /api/v1/streams`, any logged-in user's); and what one access-log
line costs.

    python bench/metrics.py [--streams 100] [--players 2000] [--scrapes 20]
                            [--shards 2] [--fronts 2] [--procs 4]

Starts the server, pushes `--streams` light synthetic RTSP/TCP streams
(bench/_rtsp_client.py's publisher: 5 fps, an IDR a second, ~3 KB/s) and
attaches `--players` HTTP-FLV players spread over them (bench/players.py's
load processes). At each stage (no players, all players) it scrapes
`/metrics` `--scrapes` times, one a second as Prometheus would, and prints
the scrape's wall time (p50, p90, max), the answer's size and series, and
the tree's CPU per scrape (its CPU over the scraping window minus the same
window without scrapes). With the players attached it does the same with
`GET /api/v1/streams` (a page of 20, players counted) and
`?c=1&page_size=100` (a page of 100 with every player's details), five
times `--scrapes` requests one after another. Then it times `hub.logs.log_access` in this
process with the JSON formatter (what one player or publisher session's end
adds when `log.access` is on).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST, PY, HubTree, Procs, cpu_seconds, machine_note, pct, report_leftovers  # noqa: E402

#: The light publishers (as bench/footprint.py's): 5 fps, an IDR a second.
PUB = {"fps": 5, "gop": 5, "i_size": 2000, "p_size": 300}


async def _publisher(port: int, paths: list[str]) -> None:
    import _rtsp_client as rc

    started = [asyncio.Event() for _ in paths]
    tasks = [asyncio.create_task(rc.publish(HOST, port, p, recording=e, **PUB)) for p, e in zip(paths, started)]
    for i in range(0, len(paths), 20):  # not all ANNOUNCEs at once
        await asyncio.wait([asyncio.create_task(e.wait()) for e in started[i:i + 20]], timeout=30)
    print(json.dumps({"recording": sum(e.is_set() for e in started)}), flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()  # until EOF
    for t in tasks:
        t.cancel()


def login(port: int) -> str:
    body = json.dumps({"username": "admin", "password": os.environ["HUB_ADMIN_PASSWORD"]}).encode()
    req = urllib.request.Request(f"http://{HOST}:{port}/api/v1/login", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        token: str = json.load(r)["access_token"]
    return token


def scrape(port: int, target: str = "/metrics", token: str = "") -> tuple[float, bytes]:
    req = urllib.request.Request(f"http://{HOST}:{port}{target}",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def stage(tree: HubTree, label: str, scrapes: int, target: str = "/metrics", token: str = "",
          every: float = 1.0) -> None:
    """`scrapes` requests of `target` `every` s apart (0: one after another);
    the same time without them first."""
    pids = tree.pids()
    sup = [tree.pid]
    c0, s0, t0 = cpu_seconds(pids), cpu_seconds(sup), time.monotonic()
    time.sleep(max(scrapes * every, 10.0))
    wall = time.monotonic() - t0
    idle_rate, sup_idle = (cpu_seconds(pids) - c0) / wall, (cpu_seconds(sup) - s0) / wall
    times: list[float] = []
    body = b""
    c0, s0, t0 = cpu_seconds(pids), cpu_seconds(sup), time.monotonic()
    for i in range(scrapes):
        took, body = scrape(tree.port, target, token)
        times.append(took)
        time.sleep(max(0.0, t0 + every * (i + 1) - time.monotonic()))
    wall = time.monotonic() - t0
    tree_cost = ((cpu_seconds(pids) - c0) / wall - idle_rate) * wall / scrapes
    sup_cost = ((cpu_seconds(sup) - s0) / wall - sup_idle) * wall / scrapes
    if target == "/metrics":
        lines = [ln for ln in body.decode().splitlines() if ln and not ln.startswith("#")]
        paths = sum(1 for ln in lines if ln.startswith("ipchub_stream_bytes_out_total{"))
        what = f"{len(lines)} series ({paths} paths)"
    else:
        listing = json.loads(body)
        what = (f"{len(listing['streams'])} of {listing['total']} streams, "
                f"{sum(s['cc'] for s in listing['streams'])} players")
    print(f"{label:<28} p50 {1000 * pct(times, 0.5):5.1f} ms  p90 {1000 * pct(times, 0.9):5.1f} ms  "
          f"max {1000 * max(times):5.1f} ms | {len(body) / 1024:5.1f} KiB, {what} | "
          f"CPU per request: supervisor {1000 * sup_cost:4.1f} ms, whole tree {1000 * tree_cost:5.1f} ms "
          f"(tree at {100 * idle_rate:.0f}% of a core between requests)", flush=True)


def access_log_cost(n: int = 20000) -> None:
    """log_access with the JSON formatter into memory: the CPU one line costs."""
    from hub.config import LogConfig
    from hub.logs import ACCESS_LOGGER, JsonFormatter, log_access, setup_logging

    setup_logging("front-0", LogConfig(format="json", access=True, level="WARN"))
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter("front-0"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    fields = {"path": "/live/camera-17", "protocol": "flv", "remote": "192.0.2.41:53211", "user": "viewer",
              "duration": 1234.567, "bytes": 987654321}
    t0 = time.perf_counter()
    for _ in range(n):
        log_access("player", **fields)
    on = (time.perf_counter() - t0) / n
    logging.getLogger(ACCESS_LOGGER).disabled = True
    t0 = time.perf_counter()
    for _ in range(n):
        log_access("player", **fields)
    off = (time.perf_counter() - t0) / n
    print(f"access log: {1e6 * on:.1f} us per line (JSON, in memory; a file or stderr adds its write), "
          f"{1e9 * off:.0f} ns per call when off", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--players", type=int, default=2000)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--fronts", type=int, default=2)
    ap.add_argument("--procs", type=int, default=4, help="load processes the players are spread over")
    ap.add_argument("--publisher", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publisher:
        import uvloop

        uvloop.run(_publisher(int(args.publisher[0]), args.publisher[1].split(",")))
        return
    from players import PlayerPool

    print(f"metrics: {args.shards} shards + {args.fronts} fronts, {args.streams} streams, {args.players} players")
    print(machine_note(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    os.environ["HUB_ADMIN_PASSWORD"] = secrets.token_urlsafe(12)  # the tree's admin, for the listings
    procs = Procs()
    try:
        tree: HubTree = procs.add(HubTree(work, args.shards, args.fronts,
                                          extra=("--metrics-max-paths", str(max(100, args.streams)))))
        tree.wait_ready()
        stage(tree, "idle tree", args.scrapes)
        paths = [f"/m/s{i}" for i in range(args.streams)]
        pub = procs.add(subprocess.Popen([PY, __file__, "--publisher", str(tree.port), ",".join(paths)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        assert pub.stdout is not None
        got = json.loads(pub.stdout.readline() or '{"recording": 0}')["recording"]
        time.sleep(2.0)
        stage(tree, f"{got} streams, no players", args.scrapes)
        with PlayerPool("http-flv", HOST, tree.port, paths, args.players, args.procs) as pool:
            connected = pool.ready()
            time.sleep(3.0)
            stage(tree, f"{got} streams, {connected} players", args.scrapes)
            token = login(tree.port)
            listings = 5 * args.scrapes  # one after another: the tree's CPU per request stands out
            stage(tree, "  GET /api/v1/streams", listings, "/api/v1/streams", token, every=0)
            stage(tree, "  ...?c=1&page_size=100", listings, "/api/v1/streams?c=1&page_size=100", token, every=0)
        assert pub.stdin is not None
        pub.stdin.close()
        pub.wait(15)
        procs.remove(pub)
    finally:
        left = procs.stop_all()
        report_leftovers(left)
    access_log_cost()


if __name__ == "__main__":
    main()
