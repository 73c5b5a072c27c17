"""WHEP players held per core and push->play latency, beside HTTP-FLV's, in one run.

    python bench/webrtc.py [--players 100,300] [--seconds 8] [--procs 2]

One server tree with one front and one shard (so the front's CPU is one
core's work), one publisher (bench/_rtsp_client.py over RTSP/TCP: a 25 fps
synthetic H.264 stream, GOP 1 s, 60 KB IDR / 8 KB P frames, each frame
stamped with its send time on CLOCK_MONOTONIC).

1. Latency (bench/latency.py's method): one player per protocol takes the
   send time out of every access unit and records receive - send; WHEP
   through a lightweight player (bench/_whep_client.py: ICE check, DTLS,
   SRTP decrypt, depacketise), HTTP-FLV through latency.py's FLV client.
2. Players per core: N players per protocol, in `--procs` load processes;
   over a window, the server's CPU (front and whole tree) and how many kept
   up (>= 95% of the stream's bytes): as the server sent it (its consumers'
   byte counts in /api/v1/streams) and as the players received it (on a
   loaded 2-core machine the load processes, not the server, may be the
   ones that fall behind: their CPU is printed). The front's CPU per player
   gives the players one core holds: N / front CPU, and from the slope
   between the two N (the marginal cost of a player).

Everything started here is ended by PID; the tree must leave nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _rtsp_client as rc  # noqa: E402
import latency  # noqa: E402
from _common import (HOST, PY, ROOT, HubTree, cpu_seconds, machine_note, pct, report_leftovers, stop,  # noqa: E402
                     wait_http)
from players import KEEP_UP, PlayerPool, Window, measure  # noqa: E402

PATH = "/bench/webrtc"
ADMIN_PASSWORD = "bench-webrtc"
WARMUP = latency.WARMUP
STREAM_RATE = latency.STREAM_RATE


# -- the load processes --------------------------------------------------------------------
async def measure_whep(port: int, path: str, seconds: float) -> None:
    from _whep_client import WhepPlayer

    lat: list[int] = []
    start = time.monotonic_ns() + int(WARMUP * 1e9)

    def on_unit(data: bytes, now: int) -> None:
        stamp = rc.stamp_of_avcc(data)
        if stamp is not None and now >= start:
            lat.append((now - stamp[0]) // 1000)

    p = WhepPlayer(f"http://{HOST}:{port}/streams{path}/whep", on_unit)
    await p.start()
    await asyncio.sleep(WARMUP + seconds)
    p.close()
    await asyncio.to_thread(p.delete)
    print(json.dumps({"lat_us": lat}), flush=True)


async def discard_whep(port: int, path: str, n: int) -> None:
    """n players that count bytes; a line `mark` on stdin prints the counts."""
    from _whep_client import WhepPlayer

    url = f"http://{HOST}:{port}/streams{path}/whep"
    players: list[WhepPlayer] = []
    errors: dict[str, int] = {}

    async def one() -> None:
        p = WhepPlayer(url)
        try:
            await p.start()
            players.append(p)
        except Exception as e:  # noqa: BLE001 - counted and reported, the run goes on
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            p.close()

    for i in range(0, n, 20):
        await asyncio.gather(*(one() for _ in range(min(20, n - i))))
    _say({"ready": len(players), "errors": errors})
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while (await stdin.readline()).strip() == b"mark":
        _say({"t": time.monotonic(), "cpu": time.process_time(), "bytes": [p.bytes for p in players], "lost": 0})
    for p in players:
        p.close()
    await asyncio.gather(*(asyncio.to_thread(p.delete) for p in players))


def _say(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class WhepPool(PlayerPool):
    """PlayerPool's interface (ready, mark, close) over WHEP load processes."""

    def __init__(self, port: int, path: str, n: int, procs: int) -> None:
        self.proto = "whep"
        self.n = n
        k = max(1, min(procs, n))
        self.workers = [subprocess.Popen([PY, __file__, "--client", "discard", str(port), path,
                                          str(n // k + (1 if i < n % k else 0))],
                                         cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                        for i in range(k)]
        self.connected = 0
        self.errors: dict[str, int] = {}


# -- the run ---------------------------------------------------------------------------------
def load(proto: str, port: int, n: int, procs: int) -> PlayerPool:
    if proto == "whep":
        return WhepPool(port, PATH, n, procs)
    return PlayerPool("http-flv", HOST, port, [PATH], n, procs)


def _token(port: int) -> str:
    req = urllib.request.Request(f"http://{HOST}:{port}/api/v1/login", method="POST",
                                 data=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["access_token"])


def _sent(port: int, token: str) -> dict[int, int]:
    """Bytes the server has sent each player of the stream (its consumers)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/streams{PATH}?c=1&token={token}", timeout=10) as r:
        return {c["id"]: c["flow"]["outbytes"] for c in json.loads(r.read()).get("cs", [])}


def window(tree: HubTree, proto: str, n: int, procs: int, seconds: float,
           token: str) -> tuple[Window, float, int, list[int]]:
    """(window over the whole tree, the front's CPU seconds in it, players
    connected, bytes the server sent each player in the window)."""
    front = [p.pid for name, p in tree.processes() if name.startswith("front-")]
    with load(proto, tree.port, n, procs) as pool:
        connected = pool.ready()
        time.sleep(2.5)  # the joining GOP bursts are not the stream's rate
        s0 = _sent(tree.port, token)
        f0 = cpu_seconds(front)
        w = measure(pool, seconds, tree.pids())
        f1 = cpu_seconds(front)
        s1 = _sent(tree.port, token)
    sent = [int((s1[c] - s0[c]) * w.elapsed / w.wall) for c in s1 if c in s0]
    return w, f1 - f0, connected, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--players", default="100,300", help="two player counts per protocol")
    ap.add_argument("--seconds", type=float, default=8.0, help="each measured window")
    ap.add_argument("--procs", type=int, default=2, help="load processes per protocol")
    ap.add_argument("--client", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client is not None:
        import uvloop

        mode, port, path, *rest = args.client
        if mode == "measure":
            uvloop.run(measure_whep(int(port), path, float(rest[0])))
        elif mode == "discard":
            uvloop.run(discard_whep(int(port), path, int(rest[0])))
        return

    counts = [int(x) for x in args.players.split(",")]
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-webrtc-"))
    os.environ["HUB_ADMIN_PASSWORD"] = ADMIN_PASSWORD  # the tree's first start creates admin with it
    tree = HubTree(work, shards=1, fronts=1)
    procs: list[Any] = []
    rows: list[str] = []
    try:
        tree.wait_ready()
        procs.append(latency.client("publish", tree.port, PATH, stdout=None))
        wait_http(f"http://{HOST}:{tree.port}/streams{PATH}.flv")
        time.sleep(1.5)

        lat: dict[str, list[float]] = {}
        lat["whep"] = [x / 1000 for x in latency.result(subprocess.Popen(
            [PY, __file__, "--client", "measure", str(tree.port), PATH, str(args.seconds)], cwd=ROOT,
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True), args.seconds + 60)["lat_us"]]
        lat["http-flv"] = [x / 1000 for x in latency.result(
            latency.client("measure", "http-flv", tree.port, PATH, 1, args.seconds), args.seconds + 60)["lat_us"]]
        print("  latency measured", file=sys.stderr, flush=True)

        cap: list[tuple[str, int, int, Window, float, list[int]]] = []
        token = _token(tree.port)
        for proto in ("whep", "http-flv"):
            for n in counts:
                w, front_cpu, connected, sent = window(tree, proto, n, args.procs, args.seconds, token)
                cap.append((proto, n, connected, w, front_cpu, sent))
                print(f"  {proto} x{n}: front {100 * front_cpu / w.wall:.0f}% of a core", file=sys.stderr, flush=True)

        rows.append(machine_note())
        rows.append(f"stream: synthetic H.264 {rc.FPS} fps, GOP {rc.GOP / rc.FPS:.0f} s, {rc.I_SIZE // 1000} KB IDR / "
                    f"{rc.P_SIZE // 1000} KB P ({STREAM_RATE * 8 / 1e6:.1f} Mbit/s), pushed over RTSP/TCP; "
                    f"server: 1 front, 1 shard; all on loopback ({HOST})")
        rows.append("")
        rows.append(f"push->play latency (ms), one player, {args.seconds:.0f} s window (send time stamped in each frame)")
        rows.append(f"{'protocol':<10}{'frames':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
        for proto, ms in lat.items():
            rows.append(f"{proto:<10}{len(ms):>8}{pct(ms, .5):>8.2f}{pct(ms, .95):>8.2f}{pct(ms, .99):>8.2f}{max(ms):>8.2f}")
        rows.append("")
        rows.append(f"players of one stream ({args.procs} load processes per protocol, {args.seconds:.0f} s window): "
                    f"held = received >= {KEEP_UP:.0%} of the stream's bytes")
        rows.append(f"{'protocol':<10}{'players':>8}{'playing':>8}{'sent':>6}{'got':>6}{'front %':>9}{'tree %':>8}"
                    f"{'us/player-frame':>17}{'players/core':>14}  load processes' CPU")
        for proto, n, connected, w, front_cpu, sent in cap:
            rate = STREAM_RATE
            front_pct = 100 * front_cpu / w.wall
            per = front_cpu / max(1, len(w.bytes) * rc.FPS * w.wall) * 1e6
            core = len(w.bytes) / (front_cpu / w.wall) if front_cpu else float("inf")
            held_sent = sum(1 for b in sent if b >= KEEP_UP * rate * w.elapsed)
            over = "" if held_sent == len(sent) else "  <- the front fell behind (shed): past what it got"
            rows.append(f"{proto:<10}{n:>8}{connected:>8}{held_sent:>6}{w.held(rate):>6}{front_pct:>9.1f}"
                        f"{100 * w.server_cpu / w.wall:>8.1f}{per:>17.2f}{core:>14.0f}  {w.client_text()}{over}")
        rows.append("(sent: players the server sent >= 95% of the stream in the window; got: players that "
                    "received it)")
        for proto in ("whep", "http-flv"):
            a, b = [c for c in cap if c[0] == proto][:2]
            da = a[4] / a[3].wall
            db = b[4] / b[3].wall
            all_sent = all(sum(1 for x in c[5] if x >= KEEP_UP * STREAM_RATE * c[3].elapsed) == len(c[5])
                           for c in (a, b))
            if not all_sent:
                rows.append(f"{proto}: no marginal cost (a run fell behind; its CPU is not the players' cost)")
            elif db > da and len(b[3].bytes) > len(a[3].bytes):
                marginal = (len(b[3].bytes) - len(a[3].bytes)) / (db - da)
                rows.append(f"{proto}: marginal cost {1e6 * (db - da) / (len(b[3].bytes) - len(a[3].bytes)) / rc.FPS:.2f} "
                            f"us per player-frame -> {marginal:.0f} players per core")
        rows.append(f"Bench took {time.monotonic() - t_start:.0f} s.")
        print("\n".join(rows), flush=True)
    finally:
        for p in reversed(procs):
            stop(p)
        report_leftovers(tree.stop())


if __name__ == "__main__":
    main()
