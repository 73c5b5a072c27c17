"""RTMP ingest and RTMP fan-out on this machine (bench/rtsp.py's twin).

    python bench/rtmp.py [--publishers 8] [--players 50,100,200] [--seconds 8] [--procs 1]

1. Ingest: N ffmpeg publishers each push a 2 Mbit/s H.264+AAC stream as FLV
   over RTMP (to RTMP's own port); the shards' CPU over the window gives CPU
   per publisher and so publishers ingested per core. The same file pushed
   the same way as bench/rtsp.py's, so the two compare.
2. Play: one stream pushed over RTMP, N RTMP players (load processes doing
   the handshake, connect, createStream and play with raw sockets, then only
   counting bytes: bench/_clients.py); prints players held in real time (>=
   95% of the stream's bytes) and the serving processes' CPU per
   player-frame.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (FPS, HOST, HubTree, Procs, cpu_seconds, free_port, machine_note, make_media,  # noqa: E402
                     report_leftovers, wait_http)
from players import PlayerPool, Window, measure, stream_rate  # noqa: E402


def push(media: Path, url: str) -> subprocess.Popen[bytes]:
    """ffmpeg pushing `media` in a loop, in real time, as FLV over RTMP."""
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re",
                             "-stream_loop", "-1", "-i", str(media), "-c", "copy", "-f", "flv", url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def run_load(port: int, path: str, n: int, seconds: float, pids: list[int], procs: int = 1) -> tuple[Window, int]:
    """n RTMP players of `path`, one measured window; also how many connected."""
    with PlayerPool("rtmp", HOST, port, [path], n, procs) as pool:
        connected = pool.ready()
        time.sleep(2.0)  # the cached GOP's burst is not the stream's rate
        return measure(pool, seconds, pids), connected


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--players", default="50,100,200")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--procs", type=int, default=1, help="load processes the players are spread over")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-rtmp-"))
    media = make_media(work)
    rtmp_port = free_port()
    procs = Procs()
    print(machine_note(), flush=True)
    try:
        tree = procs.add(HubTree(work, extra=("--rtmp-port", str(rtmp_port))))
        tree.wait_ready()
        kids = tree.children()
        shards = [p.pid for name, p in kids.items() if name.startswith("shard-")]
        ours = tree.pids()
        pushers = [procs.add(push(media, f"rtmp://{HOST}:{rtmp_port}/ingest/s{i}"))
                   for i in range(args.publishers)]
        for i in range(args.publishers):
            wait_http(f"http://{HOST}:{tree.port}/streams/ingest/s{i}.flv")
        time.sleep(2.0)
        c0, t0 = cpu_seconds(shards), time.monotonic()
        time.sleep(args.seconds)
        c1, t1 = cpu_seconds(shards), time.monotonic()
        per = (c1 - c0) / (t1 - t0) / args.publishers
        print(f"ingest: {args.publishers} RTMP publishers at 2 Mbit/s: shard CPU {100 * per:.2f}% of a core each "
              f"-> {1 / per:.0f} publishers per core", flush=True)
        for p in pushers:
            procs.remove(p)
            p.kill()  # no trailer to a server that is still reading: no "broken pipe" noise
            p.wait(10)
        time.sleep(1.0)

        procs.add(push(media, f"rtmp://{HOST}:{rtmp_port}/bench/play"))
        wait_http(f"http://{HOST}:{tree.port}/streams/bench/play.flv")
        rate = stream_rate("rtmp", HOST, rtmp_port, "/bench/play", min(args.seconds, 5.0))
        print(f"play: stream {rate * 8 / 1e6:.2f} Mbit/s as RTMP", flush=True)
        print(f"{'players':>8} {'held':>6} {'cpu %':>7} {'us/player-frame':>16}  client cpu")
        for n in [int(x) for x in args.players.split(",")]:
            r, connected = run_load(rtmp_port, "/bench/play", n, args.seconds, ours, args.procs)
            us = r.server_us_per_player_frame(FPS)
            note = "" if connected == n else f"  ({n - connected} refused)"
            print(f"{n:>8} {r.held(rate):>6} {100 * r.server_cpu / r.wall:>7.1f} {us:>16.2f}  {r.client_text()}{note}",
                  flush=True)
    finally:
        report_leftovers(procs.stop_all())


if __name__ == "__main__":
    main()
