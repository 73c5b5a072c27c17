"""This server and the Go reference (ipchub) side by side, in one run.

    python bench/reference.py --reference /path/to/ipchub [--shards 2] [--fronts 2]
                              [--idle-seconds 60] [--publishers 16] [--mbps 1]
                              [--windows 4] [--players 200] [--player-windows 2]
                              [--player-protocol rtsp|http-flv|ws-flv] [--ingest-window MS]
                              [--unwatched-ingest-window MS]

The reference is not part of this project: build it yourself (it is Go,
`go build` in a checkout of github.com/cnotch/ipchub) and give the binary.
Both servers run at once on loopback, each as its own process tree, so
whatever else the machine does weighs on both alike (this VM's CPU time per
unit of work moves by 1.5x between runs; a ratio from one run does not):

1. Idle: both servers started, nothing connected; memory (PSS, USS: the
   whole tree's for ours: supervisor, zygote, shards, fronts) and CPU over
   `--idle-seconds`.
2. Ingest: `--publishers` FFmpeg publishers on each (the same file, 720p25
   H.264 of `--mbps` Mbit/s + AAC, RTSP/TCP), `--windows` windows of 15 s:
   % of a core per 1 Mbit/s publisher, ours as the whole tree's CPU and as
   the shards' alone, and the reference's over ours (> 1: ours is cheaper);
   `--ingest-window 40` runs ours reading each publisher at most once per
   40 ms (`ingest_window`). Nobody plays these streams, so with its
   defaults ours reads them in 40 ms windows anyway
   (`unwatched_ingest_window`); `--unwatched-ingest-window 0` has it read
   them at once, as it reads a stream someone plays: that is the figure for
   a watched stream.
   The windows start once every stream's ring has gone round once
   (`--warmup`, by default the time an 8 MiB ring takes at the file's rate,
   ~60 s at 1 Mbit/s): until then each page the writer reaches is touched
   for the first time, a page fault per 4 KiB (~15% of the shard's CPU at
   1 Mbit/s), which a server that has run a minute no longer pays. The
   shards' page faults in the windows are printed.
3. Players (`--players N`, 0: skip): one more publisher on each, N RTSP/TCP
   (or HTTP-FLV, WS-FLV: `--player-protocol`) players of it
   (bench/players.py), the two servers' windows taken in
   turn (the load generator needs the CPU too): server CPU per
   player-frame and players held in real time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (PY, SERVER_ROOT, Proc, cpu_seconds, free_port, machine_note, make_media, push, stop,  # noqa: E402
                     wait_http, wait_port)
from players import PlayerPool, measure, stream_rate, tree_pids  # noqa: E402
from rtsp import minor_faults, warmup_seconds  # noqa: E402

WINDOW = 15.0


def memory(pids: list[int]) -> tuple[float, float]:
    """(PSS, USS) of these processes, MiB."""
    pss = uss = 0
    for pid in pids:
        try:
            m = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        pss += m.pss
        uss += m.uss
    return pss / 2**20, uss / 2**20


def shard_pids(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children(recursive=True) if "shard" in " ".join(c.cmdline())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", default=os.environ.get("IPCHUB_REFERENCE", ""),
                    help="the Go ipchub binary (or $IPCHUB_REFERENCE)")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--fronts", type=int, default=2)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--publishers", type=int, default=16, help="on each server (0: skip the ingest)")
    ap.add_argument("--mbps", type=float, default=1.0)
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=-1.0,
                    help="seconds from the publishers' start to the first window (default: a ring's first lap)")
    ap.add_argument("--players", type=int, default=200, help="players on each (0: skip)")
    ap.add_argument("--player-protocol", choices=("rtsp", "http-flv", "ws-flv"), default="rtsp")
    ap.add_argument("--player-windows", type=int, default=2)
    ap.add_argument("--ingest-window", type=int, default=0,
                    help="ours with `ingest_window` (ms): each publisher read at most once per window")
    ap.add_argument("--unwatched-ingest-window", type=int, default=40,
                    help="ours with `unwatched_ingest_window` (ms; 40 is the server's default, 0: read at once)")
    ap.add_argument("--procs", type=int, default=2, help="load processes the players are spread over")
    args = ap.parse_args()
    ref = shutil.which(args.reference) if args.reference else None
    if not ref:
        raise SystemExit("give the Go reference's binary: --reference /path/to/ipchub (see this file's doc)")
    print(machine_note())
    work = Path(tempfile.mkdtemp(prefix="bench-reference-"))
    procs: list[Proc] = []
    try:
        media = make_media(work, name=f"bench_{args.mbps:g}m.mp4", bitrate=f"{int(args.mbps * 1000)}k")
        mbit = media.stat().st_size * 8 / 20 / 1e6  # make_media's 20 s, as pushed
        ports = {"ours": free_port(), "reference": free_port()}
        (work / "ref").mkdir()
        servers = {
            "ours": subprocess.Popen(
                [PY, "-m", "hub", "--listen", f"127.0.0.1:{ports['ours']}", "--data", str(work / "data"),
                 "--shards", str(args.shards), "--fronts", str(args.fronts), "--log-level", "warning",
                 "--ingest-window", str(args.ingest_window),
                 "--unwatched-ingest-window", str(args.unwatched_ingest_window)],
                cwd=SERVER_ROOT, env={**os.environ, "HUB_RTMP_PORT": "0"},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            "reference": subprocess.Popen(
                [ref, "-listen", f"127.0.0.1:{ports['reference']}"], cwd=work / "ref",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        }
        procs += servers.values()
        for port in ports.values():
            wait_port(port)
        time.sleep(3.0)  # ours: children up and settled
        pids = {name: tree_pids(p.pid) for name, p in servers.items()}
        print(f"ours: {SERVER_ROOT}, {args.shards} shards + {args.fronts} fronts ({len(pids['ours'])} processes); "
              f"reference: {ref} (1 process)")
        idle(args, pids)
        if args.publishers:
            ingest(args, ports, servers, media, mbit, procs)
        if args.players:
            players(args, ports, pids, media, procs)
    finally:
        for p in reversed(procs):
            stop(p, 20.0)
        shutil.rmtree(work, ignore_errors=True)


def idle(args: argparse.Namespace, pids: dict[str, list[int]]) -> None:
    c0, t0 = {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
    time.sleep(args.idle_seconds)
    c1, t1 = {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
    print(f"idle, {t1 - t0:.0f} s, nothing connected:")
    mem = {n: memory(p) for n, p in pids.items()}
    for n in pids:
        print(f"  {n:>9}: PSS {mem[n][0]:6.1f} MiB, USS {mem[n][1]:6.1f} MiB, "
              f"CPU {100 * (c1[n] - c0[n]) / (t1 - t0):.3f}% of a core", flush=True)
    print(f"  ours / reference, PSS: {mem['ours'][0] / mem['reference'][0]:.1f}x")


def ingest(args: argparse.Namespace, ports: dict[str, int], servers: dict[str, subprocess.Popen[bytes]],
           media: Path, mbit: float, procs: list[Proc]) -> None:
    for i in range(args.publishers):  # alternately, so both see the same start
        for port in ports.values():
            procs.append(push(media, f"rtsp://127.0.0.1:{port}/ingest/s{i}"))
    for port in ports.values():
        for i in range(args.publishers):
            wait_http(f"http://127.0.0.1:{port}/streams/ingest/s{i}.flv")
    warmup = warmup_seconds(args.warmup, mbit)
    whole = {n: tree_pids(p.pid) for n, p in servers.items()}
    shards = shard_pids(servers["ours"].pid)
    if args.ingest_window:
        mode = f"every publisher read in {args.ingest_window} ms windows (ingest_window)"
    elif args.unwatched_ingest_window:
        mode = f"unwatched: read in {args.unwatched_ingest_window} ms windows (unwatched_ingest_window)"
    else:
        mode = "read at once, as a watched stream"
    print(f"ingest: {args.publishers} RTSP/TCP publishers of {mbit:.2f} Mbit/s on each server, nobody playing "
          f"(ours: {mode}), % of a core per 1 Mbit/s publisher, {WINDOW:g} s windows after {warmup:.0f} s",
          flush=True)
    time.sleep(warmup)
    ratios, ratios_shards = [], []
    for w in range(args.windows):
        sets = {**whole, "shards": shards}
        c0, t0, f0 = {n: cpu_seconds(p) for n, p in sets.items()}, time.monotonic(), minor_faults(shards)
        time.sleep(WINDOW)
        c1, t1, f1 = {n: cpu_seconds(p) for n, p in sets.items()}, time.monotonic(), minor_faults(shards)
        pct = {n: 100 * (c1[n] - c0[n]) / (t1 - t0) / args.publishers / mbit for n in sets}
        ratios.append(pct["reference"] / pct["ours"])
        ratios_shards.append(pct["reference"] / pct["shards"])
        print(f"  window {w + 1}: ours {pct['ours']:.3f}% (shards {pct['shards']:.3f}%), "
              f"reference {pct['reference']:.3f}%: the reference costs {ratios[-1]:.2f}x ours "
              f"({ratios_shards[-1]:.2f}x our shards); our shards' page faults {(f1 - f0) / (t1 - t0):.0f}/s "
              f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    print(f"ingest: the reference costs {min(ratios):.2f}-{max(ratios):.2f}x (median "
          f"{statistics.median(ratios):.2f}x) our whole tree's CPU per publisher, "
          f"{min(ratios_shards):.2f}-{max(ratios_shards):.2f}x our shards'", flush=True)
    for p in procs[2:]:
        stop(p)
    del procs[2:]
    time.sleep(2.0)


def players(args: argparse.Namespace, ports: dict[str, int], pids: dict[str, list[int]], media: Path,
            procs: list[Proc]) -> None:
    for port in ports.values():
        procs.append(push(media, f"rtsp://127.0.0.1:{port}/bench/play"))
    for port in ports.values():
        wait_http(f"http://127.0.0.1:{port}/streams/bench/play.flv")
    time.sleep(2.0)
    proto = args.player_protocol
    rate = {n: stream_rate(proto, "127.0.0.1", port, "/bench/play", 3.0) for n, port in ports.items()}
    print(f"players: {args.players} {proto} players on one stream, each server in turn, "
          f"{args.player_windows} windows of 8 s each", flush=True)
    cost: dict[str, list[float]] = {n: [] for n in ports}
    for w in range(args.player_windows):
        for n, port in ports.items():
            with PlayerPool(proto, "127.0.0.1", port, ["/bench/play"], args.players, args.procs) as pool:
                pool.ready()
                time.sleep(2.0)  # the cached GOP's burst is not the stream's rate
                win = measure(pool, 8.0, tree_pids(pids[n][0]))
            us = win.server_us_per_player_frame()
            cost[n].append(us)
            print(f"  window {w + 1}, {n:>9}: {win.held(rate[n])}/{args.players} held in real time, "
                  f"server {us:.1f} us per player-frame; {win.client_text()}", flush=True)
    ratio = statistics.median(cost["reference"]) / statistics.median(cost["ours"])
    print(f"players: the reference costs {ratio:.2f}x ours per player-frame (medians)", flush=True)


if __name__ == "__main__":
    main()
