"""Fan-out cost: our HTTP-FLV / WS-FLV players against a bare reference.

    python bench/fanout.py [--counts 50,100,200,400] [--seconds 8]

Starts the server (default shards/fronts), pushes one 2 Mbit/s H.264+AAC
stream with ffmpeg, and starts `bench/bare_fanout.py`, which reads that
stream once and writes the same bytes to its own N sockets, one write per
read, and nothing else. For each N it attaches N players (a separate load
process) to ours over HTTP-FLV, then WS-FLV, then to the bare program, and
prints for each: players held in real time (receiving >= 95% of the stream's
bytes), CPU microseconds per player-frame of the serving processes, and our
cost over the bare one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
FPS = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_media(folder: Path) -> Path:
    out = folder / "bench_2m.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}:duration=20",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=20",
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2M", "-maxrate", "2M",
                    "-bufsize", "1M", "-g", "50", "-bf", "0", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", str(out)], check=True, timeout=300)
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read(13)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} not reachable")


def run_players(url: str, n: int, seconds: float, mode: str, server_pids: list[int]) -> dict[str, float]:
    load = subprocess.Popen([PY, str(ROOT / "bench" / "players.py"), url, str(n), str(seconds), mode],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(2.0 + n / 400)  # connected and warmed up (players.py waits 2 s too)
    c0, t0 = cpu_seconds(server_pids), time.monotonic()
    out, _ = load.communicate(timeout=seconds + 60)
    c1, t1 = cpu_seconds(server_pids), time.monotonic()
    res = json.loads(out.strip().splitlines()[-1])
    return {"cpu": c1 - c0, "wall": t1 - t0, "bytes": res["bytes"], "elapsed": res["elapsed"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="50,100,200,400")
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]

    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    media = make_media(work)
    port, bare_port = free_port(), free_port()
    server = subprocess.Popen([PY, "-m", "hub", "--listen", f"127.0.0.1:{port}", "--data", str(work / "data")],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs: list[subprocess.Popen[bytes]] = [server]
    try:
        time.sleep(2)
        pusher = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                                   "-i", str(media), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
                                   f"rtsp://127.0.0.1:{port}/bench/s"], stdin=subprocess.DEVNULL)
        procs.append(pusher)
        flv = f"http://127.0.0.1:{port}/streams/bench/s.flv"
        wait_http(flv)
        bare = subprocess.Popen([PY, str(ROOT / "bench" / "bare_fanout.py"), flv, str(bare_port)])
        procs.append(bare)
        wait_http(f"http://127.0.0.1:{bare_port}/x.flv")
        ours = [server.pid] + [c.pid for c in psutil.Process(server.pid).children(recursive=True)]

        # The stream's byte rate, from one player.
        base = run_players(flv, 1, args.seconds, "http", ours)
        rate = base["bytes"][0] / base["elapsed"]
        print(f"stream: {rate * 8 / 1e6:.2f} Mbit/s, {FPS} fps; machine: {os.cpu_count()} CPUs")
        print(f"{'players':>8} {'target':>8} {'held':>6} {'cpu %':>7} {'us/player-frame':>16} {'vs bare':>8}"
              f" {'marginal us':>12} {'vs bare':>8}")
        prev: dict[str, tuple[int, float]] = {}
        for n in counts:
            row: dict[str, float] = {}
            marg: dict[str, float] = {}
            for name, url, mode, pids in (("bare", f"http://127.0.0.1:{bare_port}/x.flv", "http", [bare.pid]),
                                          ("http-flv", flv, "http", ours),
                                          ("ws-flv", f"ws://127.0.0.1:{port}/streams/bench/s.flv", "ws", ours)):
                r = run_players(url.replace("ws://", "http://"), n, args.seconds, mode, pids)
                held = sum(1 for b in r["bytes"] if b >= 0.95 * rate * r["elapsed"])
                us = r["cpu"] / (n * FPS * r["wall"]) * 1e6
                row[name] = us
                ratio = f"{us / row['bare']:.2f}x" if name != "bare" and row.get("bare") else ""
                # Marginal: the cost of the extra players since the previous
                # count, without each server's fixed per-stream cost.
                rate = r["cpu"] / r["wall"]
                m_text = m_ratio = ""
                if name in prev:
                    pn, prate = prev[name]
                    marg[name] = (rate - prate) / ((n - pn) * FPS) * 1e6
                    m_text = f"{marg[name]:.2f}"
                    if name != "bare" and marg.get("bare"):
                        m_ratio = f"{marg[name] / marg['bare']:.2f}x"
                prev[name] = (n, rate)
                print(f"{n:>8} {name:>8} {held:>6} {100 * rate:>7.1f} {us:>16.2f} {ratio:>8}"
                      f" {m_text:>12} {m_ratio:>8}", flush=True)
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
