"""RTSP ingest and RTSP fan-out on this machine.

    python bench/rtsp.py [--publishers 8] [--mbps 1] [--players 50,100,200] [--seconds 8]
                         [--shards N] [--fronts N] [--warmup S] [--unwatched-ingest-window MS]

1. Ingest: N ffmpeg publishers each push an H.264+AAC stream of `--mbps`
   Mbit/s (720p, 25 fps; the file's real rate is printed) over RTSP/TCP;
   the shards' CPU over the window gives % of a core per publisher, per
   Mbit/s of ingest, and so publishers ingested per core; then the shards'
   wake-ups per publisher and CPU per wake-up beside a bare uvloop reader
   woken as often, and their page faults. The window starts once the rings
   have gone round once (`--warmup`, by default the time an 8 MiB ring
   takes: ~60 s at 1 Mbit/s): until then each page a ring's writer reaches
   faults once (~15% of a shard's CPU at 1 Mbit/s), which a server that has
   run a minute no longer pays; `--warmup 0` measures the first lap. Few
   publishers per shard cost more each (every wake-up starts with cold
   caches): compare at the same `--publishers`/`--shards`. `--players 0`
   measures only this. Nobody plays these streams, so the server's
   `unwatched_ingest_window` (40 ms by default) reads them in windows;
   `--unwatched-ingest-window 0` measures them read at once, as a
   watched stream is.
2. Play: one pushed stream, N RTSP/TCP players (a separate load process doing
   DESCRIBE/SETUP/SETUP/PLAY and reading); prints players held in real time
   (>= 95% of the stream's bytes) and the serving processes' CPU per
   player-frame. The players come from bench/players.py (--procs load
   processes).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FPS, PY, SERVER_ROOT, cpu_seconds, free_port, machine_note, make_media, wait_http, wait_port  # noqa: E402
from players import PlayerPool, Window, measure  # noqa: E402


#: A stream's ring (hub/shard/stream.py RING_DATA).
RING_DATA = 8 << 20


def warmup_seconds(asked: float, mbit: float) -> float:
    """`asked` if given (>= 0), else the time a ring takes to go round once
    at `mbit` Mbit/s, and 5 s more: its pages are touched for the first time
    until then, one fault each, which a server that has run a while no
    longer pays."""
    return asked if asked >= 0 else RING_DATA * 8 / (mbit * 1e6) + 5.0


def run_load(port: int, path: str, n: int, seconds: float, pids: list[int], procs: int = 1) -> Window:
    """n RTSP/TCP players (bench/players.py) of `path`, one measured window."""
    with PlayerPool("rtsp", "127.0.0.1", port, [path], n, procs) as pool:
        pool.ready()
        time.sleep(2.0)  # the cached GOP's burst is not the stream's rate
        return measure(pool, seconds, pids)


_BARE_READER = """
import asyncio, sys, uvloop
class P(asyncio.Protocol):
    def data_received(self, d): pass
async def main():
    srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)
uvloop.run(main())
"""


def bare_wake_cost(wakes_per_s: float, seconds: float) -> float:
    """CPU µs per wake-up of a uvloop reader that does nothing with its
    bytes, woken `wakes_per_s` times a second by 1,400-byte writes: what a
    wake-up costs on this machine before any work (the floor of ingest)."""
    proc = subprocess.Popen([PY, "-c", _BARE_READER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            time.sleep(0.5)
            c0, t0, n = cpu_seconds([proc.pid]), time.monotonic(), 0
            period = 1.0 / wakes_per_s
            while time.monotonic() - t0 < seconds:
                s.send(b"x" * 1400)
                n += 1
                time.sleep(max(0.0, t0 + n * period - time.monotonic()))
            c1 = cpu_seconds([proc.pid])
        return (c1 - c0) / n * 1e6
    finally:
        proc.kill()
        proc.wait()


def wakes(pids: list[int]) -> int:
    """Voluntary context switches so far: each is a wait in epoll ended by a read."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).num_ctx_switches().voluntary
        except psutil.Error:
            pass
    return total


def minor_faults(pids: list[int]) -> int:
    """Minor page faults so far (/proc/PID/stat): a ring's pages are first
    touched, one fault each, until the ring wraps."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                total += int(f.read().rsplit(")", 1)[1].split()[7])
        except (OSError, ValueError, IndexError):
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--mbps", type=float, default=1.0, help="video bit rate of each publisher's stream")
    ap.add_argument("--shards", type=int, default=0, help="default: the server's own default")
    ap.add_argument("--fronts", type=int, default=0)
    ap.add_argument("--players", default="50,100,200")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=-1.0,
                    help="seconds of ingest before the window (default: a ring's first lap; 0: measure at once)")
    ap.add_argument("--procs", type=int, default=1, help="load processes the players are spread over")
    ap.add_argument("--unwatched-ingest-window", type=int, default=None,
                    help="the server's unwatched_ingest_window (ms; default: the server's own, 40)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-rtsp-"))
    seconds_of_media = 20
    media = make_media(work, name=f"bench_{args.mbps:g}m.mp4", bitrate=f"{int(args.mbps * 1000)}k",
                       seconds=seconds_of_media)
    mbit = media.stat().st_size * 8 / seconds_of_media / 1e6  # video + audio + container, as pushed
    port = free_port()
    argv = [PY, "-m", "hub", "--listen", f"127.0.0.1:{port}", "--data", str(work / "data")]
    if args.shards:
        argv += ["--shards", str(args.shards)]
    if args.fronts:
        argv += ["--fronts", str(args.fronts)]
    if args.unwatched_ingest_window is not None:
        argv += ["--unwatched-ingest-window", str(args.unwatched_ingest_window)]
    server = subprocess.Popen(argv, cwd=SERVER_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs: list[subprocess.Popen[bytes]] = [server]

    def push(path: str) -> None:
        procs.append(subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(media),
             "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{port}{path}"],
            stdin=subprocess.DEVNULL))

    try:
        wait_port(port)  # a fixed sleep was too short on a loaded machine
        tree = psutil.Process(server.pid).children(recursive=True)
        shards = [p.pid for p in tree if "shard" in " ".join(p.cmdline())]  # titled or not yet
        ours = [server.pid] + [p.pid for p in tree]
        for i in range(args.publishers):
            push(f"/ingest/s{i}")
        for i in range(args.publishers):
            wait_http(f"http://127.0.0.1:{port}/streams/ingest/s{i}.flv")
        warmup = warmup_seconds(args.warmup, mbit)  # steady state: the rings gone round once
        print(f"waiting {warmup:.0f} s for the rings' first lap", flush=True)
        time.sleep(max(2.0, warmup))
        c0, w0, f0, t0 = cpu_seconds(shards), wakes(shards), minor_faults(shards), time.monotonic()
        time.sleep(args.seconds)
        c1, w1, f1, t1 = cpu_seconds(shards), wakes(shards), minor_faults(shards), time.monotonic()
        per = (c1 - c0) / (t1 - t0) / args.publishers
        print(machine_note())
        print(f"ingest ({SERVER_ROOT}): {args.publishers} RTSP/TCP publishers of {mbit:.2f} Mbit/s "
              f"(H.264 {args.mbps:g} Mbit/s + AAC) over {len(shards)} shard(s), {t1 - t0:.0f} s: "
              f"shard CPU {100 * per:.3f}% of a core per publisher, {100 * per / mbit:.3f}% per Mbit/s "
              f"-> {1 / per:.0f} publishers per core; machine {os.cpu_count()} CPUs", flush=True)
        rate = (w1 - w0) / (t1 - t0)
        us = (c1 - c0) / max(1, w1 - w0) * 1e6
        floor = bare_wake_cost(rate / max(1, len(shards)), min(args.seconds, 8.0))
        print(f"  wake-ups: {rate / args.publishers:.0f}/s per publisher, {us:.0f} us of shard CPU each "
              f"(a bare uvloop reader woken as often: {floor:.0f} us); minor page faults "
              f"{(f1 - f0) / (t1 - t0) / args.publishers:.0f}/s per publisher (0 once the rings have gone round)", flush=True)
        if not args.players.strip("0, "):
            return
        for p in procs[1:]:
            p.send_signal(signal.SIGTERM)
        procs[1:] = []
        time.sleep(1.0)

        push("/bench/play")
        wait_http(f"http://127.0.0.1:{port}/streams/bench/play.flv")
        base = run_load(port, "/bench/play", 1, args.seconds, ours)
        rate = base.bytes[0] / base.elapsed
        print(f"play: stream {rate * 8 / 1e6:.2f} Mbit/s as RTP/TCP")
        print(f"{'players':>8} {'held':>6} {'cpu %':>7} {'us/player-frame':>16}  client cpu")
        for n in [int(x) for x in args.players.split(",")]:
            r = run_load(port, "/bench/play", n, args.seconds, ours, args.procs)
            us = r.server_us_per_player_frame(FPS)
            print(f"{n:>8} {r.held(rate):>6} {100 * r.server_cpu / r.wall:>7.1f} {us:>16.2f}  {r.client_text()}",
                  flush=True)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
