"""Fan-out cost: our HTTP-FLV / WS-FLV players against a bare reference.

    python bench/fanout.py [--counts 50,100,200,400] [--seconds 8] [--procs 2]

Starts the server (default shards/fronts), pushes one 2 Mbit/s H.264+AAC
stream with ffmpeg, and starts `bench/bare_fanout.py`, which reads that
stream once and writes the same bytes to its own N sockets, one write per
read, and nothing else. For each N it attaches N players (separate load
processes, bench/players.py) to the bare program, then to ours over HTTP-FLV
and WS-FLV, and prints for each: players held in real time (receiving >= 95%
of the stream's bytes), CPU microseconds per player-frame of the serving
processes, our cost over the bare one, and the load processes' own CPU (if
one nears 100% of a core, the client, not the server, was the limit).

`--windows 0,20,40,80` adds the coalescing sweep (`fanout_window`, ms): one
tree per window, `--window-players` HTTP-FLV players on it, and per window
the players held, the serving CPU per player-frame and its ratio to window
0. (`bench/latency.py --fanout-window MS` measures what a window adds to
push->play latency.) `--counts ""` runs the sweep alone.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FPS, HOST, PY, ROOT, HubTree, Procs, free_port, make_media, report_leftovers, wait_http  # noqa: E402
from players import PlayerPool, Window, measure, split_url  # noqa: E402


def run_players(url: str, n: int, seconds: float, mode: str, server_pids: list[int], procs: int) -> Window:
    """n players of `url` over `procs` load processes (bench/players.py), one window."""
    host, port, path = split_url(url)
    with PlayerPool(mode, host, port, [path], n, procs) as pool:
        pool.ready()
        time.sleep(2.0)  # the cached GOP's burst is not the stream's rate
        return measure(pool, seconds, server_pids)


def start_tree(procs: Procs, work: Path, media: Path, extra: tuple[str, ...] = ()) -> tuple[HubTree, str]:
    """A tree with one 2 Mbit/s stream pushed over RTSP/TCP; its HTTP-FLV URL."""
    tree = procs.add(HubTree(work, extra=extra))
    tree.wait_ready()
    procs.add(subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                                "-i", str(media), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
                                f"rtsp://{HOST}:{tree.port}/bench/s"], stdin=subprocess.DEVNULL))
    flv = f"http://{HOST}:{tree.port}/streams/bench/s.flv"
    wait_http(flv)
    return tree, flv


def window_sweep(work: Path, media: Path, windows: list[int], n: int, seconds: float, nprocs: int,
                 rate: float) -> None:
    """One tree per coalescing window, n HTTP-FLV players on each."""
    print(f"\ncoalescing window sweep: {n} HTTP-FLV players, one tree per window (fanout_window ms)")
    print(f"{'window':>7} {'held':>6} {'cpu %':>7} {'us/player-frame':>16} {'vs 0 ms':>8}  client cpu (per load process)")
    first: float | None = None
    for w in windows:
        procs = Procs()
        try:
            (work / f"w{w}").mkdir(exist_ok=True)
            tree, flv = start_tree(procs, work / f"w{w}", media, ("--fanout-window", str(w)))
            r = run_players(flv, n, seconds, "http", tree.pids(), nprocs)
            us = r.server_us_per_player_frame()
            first = us if first is None else first
            ratio = f"{us / first:.2f}x" if first else ""
            print(f"{w:>7} {r.held(rate):>6} {100 * r.server_cpu / r.wall:>7.1f} {us:>16.2f} {ratio:>8}"
                  f"  {r.client_text()}", flush=True)
        finally:
            report_leftovers(procs.stop_all())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="50,100,200,400")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--procs", type=int, default=2, help="load processes the players are spread over")
    ap.add_argument("--windows", default="", help="coalescing sweep, e.g. 0,20,40,80 (ms)")
    ap.add_argument("--window-players", type=int, default=400)
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",") if x]
    windows = [int(x) for x in args.windows.split(",") if x]

    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    media = make_media(work)
    bare_port = free_port()
    procs = Procs()
    try:
        tree, flv = start_tree(procs, work, media)
        bare = procs.add(subprocess.Popen([PY, str(ROOT / "bench" / "bare_fanout.py"), flv, str(bare_port)]))
        wait_http(f"http://{HOST}:{bare_port}/x.flv")
        ours = tree.pids()

        # The stream's byte rate, from one player.
        base = run_players(flv, 1, args.seconds, "http", ours, 1)
        rate = base.bytes[0] / base.elapsed
        print(f"stream: {rate * 8 / 1e6:.2f} Mbit/s, {FPS} fps; machine: {os.cpu_count()} CPUs; "
              f"players over {args.procs} load processes")
        print(f"{'players':>8} {'target':>8} {'held':>6} {'cpu %':>7} {'us/player-frame':>16} {'vs bare':>8}"
              f" {'marginal us':>12} {'vs bare':>8}  client cpu (per load process)")
        prev: dict[str, tuple[int, float]] = {}
        for n in counts:
            row: dict[str, float] = {}
            marg: dict[str, float] = {}
            for name, url, mode, pids in (("bare", f"http://{HOST}:{bare_port}/x.flv", "http", [bare.pid]),
                                          ("http-flv", flv, "http", ours),
                                          ("ws-flv", flv, "ws", ours)):
                r = run_players(url, n, args.seconds, mode, pids, args.procs)
                held = r.held(rate)
                us = r.server_us_per_player_frame()
                row[name] = us
                ratio = f"{us / row['bare']:.2f}x" if name != "bare" and row.get("bare") else ""
                # Marginal: the cost of the extra players since the previous
                # count, without each server's fixed per-stream cost.
                cpu_rate = r.server_cpu / r.wall
                m_text = m_ratio = ""
                if name in prev:
                    pn, prate = prev[name]
                    marg[name] = (cpu_rate - prate) / ((n - pn) * FPS) * 1e6
                    m_text = f"{marg[name]:.2f}"
                    if name != "bare" and marg.get("bare"):
                        m_ratio = f"{marg[name] / marg['bare']:.2f}x"
                prev[name] = (n, cpu_rate)
                print(f"{n:>8} {name:>8} {held:>6} {100 * cpu_rate:>7.1f} {us:>16.2f} {ratio:>8}"
                      f" {m_text:>12} {m_ratio:>8}  {r.client_text()}", flush=True)
    finally:
        report_leftovers(procs.stop_all())
    if windows:
        window_sweep(work, media, windows, args.window_players, args.seconds, args.procs, rate)
    shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
