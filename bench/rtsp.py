"""RTSP ingest and RTSP fan-out on this machine.

    python bench/rtsp.py [--publishers 8] [--players 50,100,200] [--seconds 8]

1. Ingest: N ffmpeg publishers each push a 2 Mbit/s H.264+AAC stream over
   RTSP/TCP; the shards' CPU over the window gives CPU per publisher and so
   publishers ingested per core.
2. Play: one pushed stream, N RTSP/TCP players (a separate load process doing
   DESCRIBE/SETUP/SETUP/PLAY and reading); prints players held in real time
   (>= 95% of the stream's bytes) and the serving processes' CPU per
   player-frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import FPS, cpu_seconds, free_port, make_media, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# -- the load process: N RTSP players -------------------------------------------
async def _player(host: str, port: int, path: str, counts: list[int], i: int) -> None:
    r, w = await asyncio.open_connection(host, port)
    url = f"rtsp://{host}:{port}{path}"

    async def req(method: str, uri: str, cseq: int, extra: str = "") -> str:
        w.write(f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
        head = (await r.readuntil(b"\r\n\r\n")).decode()
        length = 0
        for line in head.split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":")[1])
        body = (await r.readexactly(length)).decode() if length else ""
        return head + body

    await req("DESCRIBE", url, 1, "Accept: application/sdp\r\n")
    resp = await req("SETUP", f"{url}/trackID=0", 2, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    session = [l.split(":", 1)[1].strip().split(";")[0] for l in resp.split("\r\n") if l.lower().startswith("session:")][0]
    await req("SETUP", f"{url}/trackID=1", 3,
              f"Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\nSession: {session}\r\n")
    w.write(f"PLAY {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n\r\n".encode())
    while True:
        data = await r.read(262144)
        if not data:
            return
        counts[i] += len(data)


async def _load(port: int, path: str, n: int, seconds: float) -> None:
    counts = [0] * n
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(_player("127.0.0.1", port, path, counts, i)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)
    start = list(counts)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    print(json.dumps({"elapsed": elapsed, "bytes": [c - s for c, s in zip(counts, start)]}), flush=True)
    for t in tasks:
        t.cancel()


def run_load(port: int, path: str, n: int, seconds: float, pids: list[int]) -> dict[str, float]:
    load = subprocess.Popen([PY, __file__, "--load", str(port), path, str(n), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(2.0 + n / 400)
    c0, t0 = cpu_seconds(pids), time.monotonic()
    out, _ = load.communicate(timeout=seconds + 60)
    c1, t1 = cpu_seconds(pids), time.monotonic()
    res = json.loads(out.strip().splitlines()[-1])
    return {"cpu": c1 - c0, "wall": t1 - t0, "bytes": res["bytes"], "elapsed": res["elapsed"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--players", default="50,100,200")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load:
        port, path, n, seconds = args.load
        import uvloop

        uvloop.run(_load(int(port), path, int(n), float(seconds)))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-rtsp-"))
    media = make_media(work)
    port = free_port()
    server = subprocess.Popen([PY, "-m", "hub", "--listen", f"127.0.0.1:{port}", "--data", str(work / "data")],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs: list[subprocess.Popen[bytes]] = [server]

    def push(path: str) -> None:
        procs.append(subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(media),
             "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{port}{path}"],
            stdin=subprocess.DEVNULL))

    try:
        time.sleep(2.5)
        tree = psutil.Process(server.pid).children(recursive=True)
        shards = [p.pid for p in tree if "shard-" in " ".join(p.cmdline())]
        ours = [server.pid] + [p.pid for p in tree]
        for i in range(args.publishers):
            push(f"/ingest/s{i}")
        for i in range(args.publishers):
            wait_http(f"http://127.0.0.1:{port}/streams/ingest/s{i}.flv")
        time.sleep(2.0)
        c0, t0 = cpu_seconds(shards), time.monotonic()
        time.sleep(args.seconds)
        c1, t1 = cpu_seconds(shards), time.monotonic()
        per = (c1 - c0) / (t1 - t0) / args.publishers
        print(f"ingest: {args.publishers} publishers at 2 Mbit/s: shard CPU {100 * per:.2f}% of a core each "
              f"-> {1 / per:.0f} publishers per core; machine {os.cpu_count()} CPUs")
        for p in procs[1:]:
            p.send_signal(signal.SIGTERM)
        procs[1:] = []
        time.sleep(1.0)

        push("/bench/play")
        wait_http(f"http://127.0.0.1:{port}/streams/bench/play.flv")
        base = run_load(port, "/bench/play", 1, args.seconds, ours)
        rate = base["bytes"][0] / base["elapsed"]
        print(f"play: stream {rate * 8 / 1e6:.2f} Mbit/s as RTP/TCP")
        print(f"{'players':>8} {'held':>6} {'cpu %':>7} {'us/player-frame':>16}")
        for n in [int(x) for x in args.players.split(",")]:
            r = run_load(port, "/bench/play", n, args.seconds, ours)
            held = sum(1 for b in r["bytes"] if b >= 0.95 * rate * r["elapsed"])
            us = r["cpu"] / (n * FPS * r["wall"]) * 1e6
            print(f"{n:>8} {held:>6} {100 * r['cpu'] / r['wall']:>7.1f} {us:>16.2f}", flush=True)
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
