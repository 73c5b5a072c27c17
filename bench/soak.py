"""Soak: the tree's memory and fds stay flat under churning players.

    python bench/soak.py [--minutes 30] [--publishers 10] [--players 500] [--procs 4]
                         [--shards N] [--fronts N]

Starts the server, pushes `--publishers` streams (ffmpeg `-re -stream_loop -1`
of a small generated H.264+AAC file over RTSP/TCP), and runs `--players`
churning players over `--procs` load processes (uvloop): each player slot
plays one protocol (RTSP TCP, RTSP UDP, HTTP-FLV, WS-FLV, HLS, WSP, RTSP over
WebSocket, RTSP over HTTP tunnel, evenly spread), joins a random stream,
watches 1-20 s, leaves, and starts again. A session is an error when it is
refused, gets no media within 5 s (HLS: 10 s), stalls that long, or is
closed by the server before it leaves.

Every minute it prints the tree's total RSS and PSS (psutil
memory_full_info, summed over the supervisor and its children), each
process's open fds, players connected, sessions and errors by protocol, and
the load processes' CPU. At the end: growth after warm-up (`--warmup`
minutes, default 5, excluded) of PSS, RSS and fds. Under churn those move
with how many players happen to be connected at the moment, so the judged
figures are taken at rest: after the warm-up and again at the end, every player leaves,
the tree's fds are left to settle, and its memory and fds are read (then
the players come back). PASS if PSS beyond the rings and fds are each
within +-5%. A ring (8 MiB of data by default) touches new pages until it
first wraps, a few minutes at this bit rate: bounded by design, so its
pages (from /dev/shm) are printed apart and left out of the verdict; RSS
and HLS files in /dev/shm are printed too. The growth under load (mean of
the first minute after warm-up against the last) is printed beside.

Why 5 minutes of warm-up: in a 30-minute run with 1 minute of warm-up
(2026-11-30) the tree's PSS rose for the first 5 minutes (the rings filling
until they wrap, the front's heap growing to what 500 concurrent players and
their churn need: pymalloc keeps its arenas) and then stayed within 1.5%
for the 25 minutes after; a baseline taken in that climb judges the climb.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST, PY, HubTree, Procs, machine_note, make_media, mib, push, report_leftovers  # noqa: E402
from _common import wait_http  # noqa: E402

SAMPLE = 10.0  # seconds between samples; a printed line every 6
WARMUP = 300.0  # seconds; --warmup
LIMIT = 0.05
NO_MEDIA = 5.0
NO_MEDIA_HLS = 10.0  # a segment every 2 s, polled every second


# -- one load process ---------------------------------------------------------------------
class _Slot:
    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0

    def on_bytes(self, n: int) -> None:
        self.bytes += n


async def _worker(port: int, paths: list[str], first: int, n: int, watch: tuple[float, float]) -> None:
    import _clients as cl

    active: dict[str, int] = {p: 0 for p in cl.PROTOCOLS}
    sessions: dict[str, int] = {p: 0 for p in cl.PROTOCOLS}
    errors: dict[str, dict[str, int]] = {p: {} for p in cl.PROTOCOLS}
    join_sum: dict[str, float] = {p: 0.0 for p in cl.PROTOCOLS}
    join_n: dict[str, int] = {p: 0 for p in cl.PROTOCOLS}
    join_max: dict[str, float] = {p: 0.0 for p in cl.PROTOCOLS}  # since the last mark
    players: set[cl.Player] = set()
    joining = [0]
    stopping = asyncio.Event()
    running = asyncio.Event()  # cleared: every player leaves and waits (the tree at rest)
    running.set()

    def error(proto: str, kind: str) -> None:
        errors[proto][kind] = errors[proto].get(kind, 0) + 1

    async def slot(i: int) -> None:
        proto = cl.PROTOCOLS[i % len(cl.PROTOCOLS)]
        limit = NO_MEDIA_HLS if proto == "hls" else NO_MEDIA
        await asyncio.sleep(random.uniform(0, 5))  # no thundering herd at start
        while not stopping.is_set():
            await running.wait()
            sink = _Slot()
            t_join = time.monotonic()
            joining[0] += 1
            try:
                player = await cl.open_player(proto, HOST, port, random.choice(paths), sink)
            except cl.ClientError as e:
                error(proto, e.kind)
                await asyncio.sleep(1.0)
                continue
            finally:
                joining[0] -= 1
            took = time.monotonic() - t_join
            join_sum[proto] += took
            join_n[proto] += 1
            join_max[proto] = max(join_max[proto], took)
            active[proto] += 1
            players.add(player)
            try:
                end = time.monotonic() + random.uniform(*watch)
                seen, seen_at = 0, time.monotonic()
                while (now := time.monotonic()) < end and running.is_set():
                    try:
                        await asyncio.wait_for(asyncio.shield(player.lost), min(0.5, end - now))
                    except asyncio.TimeoutError:
                        pass
                    if player.lost.done():
                        error(proto, "closed by server")
                        break
                    if sink.bytes > seen:
                        seen, seen_at = sink.bytes, time.monotonic()
                    elif time.monotonic() - seen_at > limit:
                        error(proto, "no media" if seen == 0 else "stalled")
                        break
                else:
                    sessions[proto] += 1
            finally:
                active[proto] -= 1
                players.discard(player)
                player.close()

    tasks = [asyncio.create_task(slot(first + i)) for i in range(n)]
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while (cmd := (await stdin.readline()).strip()) in (b"mark", b"pause", b"resume"):
        if cmd == b"pause":
            running.clear()
            while players or joining[0]:  # each slot sees it within 0.5 s and leaves
                await asyncio.sleep(0.1)
        elif cmd == b"resume":
            running.set()
        print(json.dumps({"t": time.monotonic(), "cpu": time.process_time(), "active": active,
                          "sessions": sessions, "errors": errors, "join_sum": join_sum, "join_n": join_n,
                          "join_max": join_max, "conns": sum(p.tcp_open() for p in players)}), flush=True)
        join_max = {p: 0.0 for p in cl.PROTOCOLS}
    stopping.set()
    running.set()
    await asyncio.wait(tasks, timeout=10)
    for t in tasks:
        t.cancel()


# -- the parent ------------------------------------------------------------------------------
class Load:
    """The churning players over several processes."""

    def __init__(self, port: int, paths: list[str], n: int, procs: int, watch: str) -> None:
        self.workers: list[subprocess.Popen[str]] = []
        first = 0
        for i in range(procs):
            share = n // procs + (1 if i < n % procs else 0)
            self.workers.append(subprocess.Popen(
                [PY, __file__, "--worker", str(port), ",".join(paths), str(first), str(share), watch],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            first += share

    def mark(self, cmd: str = "mark") -> list[dict[str, Any]]:
        """Each process's counters; after `pause` every player has left, `resume` lets them back."""
        for w in self.workers:
            assert w.stdin is not None
            w.stdin.write(cmd + "\n")
            w.stdin.flush()
        out = []
        for w in self.workers:
            assert w.stdout is not None
            line = w.stdout.readline()
            if not line:
                raise SystemExit(f"load process {w.pid} ended (exit {w.wait()})")
            out.append(json.loads(line))
        return out

    def close(self) -> None:
        for w in self.workers:
            if w.stdin is not None:
                try:
                    w.stdin.close()
                except OSError:
                    pass
        for w in self.workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()


def _sum(marks: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in marks:
        for proto, v in m[key].items():
            out[proto] = out.get(proto, 0) + v
    return out


def _errors(marks: list[dict[str, Any]]) -> dict[str, int]:
    """proto/kind -> count, summed over the load processes."""
    out: dict[str, int] = {}
    for m in marks:
        for proto, kinds in m["errors"].items():
            for kind, v in kinds.items():
                out[f"{proto}/{kind}"] = out.get(f"{proto}/{kind}", 0) + v
    return out


def _sum_f(marks: list[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in marks:
        for proto, v in m[key].items():
            out[proto] = out.get(proto, 0.0) + v
    return out


def _diff_f(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: v - a.get(k, 0.0) for k, v in b.items()}


def _diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: v - a.get(k, 0) for k, v in b.items() if v - a.get(k, 0)}


def log_errors(tree: HubTree, seen: int) -> tuple[list[str], int]:
    """Server log lines at ERROR or above (and tracebacks) after the first `seen`."""
    try:
        lines = tree.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return [], seen
    bad = [ln for ln in lines if " ERROR " in ln or " CRITICAL " in ln or ln.startswith("Traceback")]
    return bad[seen:], len(bad)


def at_rest(tree: HubTree, load: Load, what: str) -> dict[str, Any]:
    """Every player leaves; once the tree's fds are steady for 2 s (at most
    30 s), its memory and fds; then the players come back."""
    load.mark("pause")
    t0 = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - t0 < 30:
        fds = sum(m.fds for m in tree.memory())
        if fds != last:
            last, since = fds, time.monotonic()
        elif time.monotonic() - since >= 2.0:
            break
        time.sleep(0.5)
    mem = tree.memory()
    rings, hls = tree.shm_bytes(hls=False), tree.shm_bytes(rings=False)
    load.mark("resume")
    rest: dict[str, Any] = {"pss": float(sum(m.pss for m in mem)), "rss": float(sum(m.rss for m in mem)),
                            "fds": float(sum(m.fds for m in mem)), "rings": float(rings), "hls": float(hls),
                            "pids": {m.name: m.pid for m in mem}}
    rest["pss_net"] = rest["pss"] - rest["rings"]
    print(f"  at rest {what} (no players, {time.monotonic() - t0:.0f} s): PSS {mib(rest['pss'])} MiB "
          f"(rings {mib(rings)}, beyond them {mib(rest['pss_net'])})  RSS {mib(rest['rss'])} MiB  "
          f"HLS files {mib(hls)} MiB; per process PSS/fds "
          + " ".join(f"{m.name}={mib(m.pss)}/{m.fds}" for m in mem), flush=True)
    return rest


def _growth(samples: list[dict[str, float]], key: str) -> tuple[float, float, float]:
    """(baseline, final, growth) of `key` over the samples after warm-up."""
    post = [s for s in samples if s["t"] > WARMUP]
    k = max(1, min(int(60 / SAMPLE), len(post) // 2))
    base = sum(s[key] for s in post[:k]) / k
    final = sum(s[key] for s in post[-k:]) / k
    return base, final, (final - base) / base if base else 0.0


def main() -> None:
    global WARMUP
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0, help="minutes before the baseline is taken")
    ap.add_argument("--publishers", type=int, default=10)
    ap.add_argument("--players", type=int, default=500)
    ap.add_argument("--procs", type=int, default=4, help="load processes the players are spread over")
    ap.add_argument("--watch", default="1,20", help="seconds a player watches: min,max")
    ap.add_argument("--shards", type=int)
    ap.add_argument("--fronts", type=int)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (server log, media)")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    WARMUP = args.warmup * 60
    if args.worker:
        import uvloop

        port, paths, first, n, watch = args.worker
        lo, hi = (float(x) for x in watch.split(","))
        uvloop.run(_worker(int(port), paths.split(","), int(first), int(n), (lo, hi)))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    procs = Procs()
    load: Load | None = None
    tree: HubTree | None = None
    seen_errors = 0
    samples: list[dict[str, float]] = []
    try:
        media = make_media(work, "soak.mp4", size="320x240", bitrate="300k", gop=25, seconds=10, audio_kbps=48)
        tree = procs.add(HubTree(work, args.shards, args.fronts))
        tree.wait_ready()
        paths = [f"/soak/s{i}" for i in range(args.publishers)]
        pushers = {p: procs.add(push(media, f"rtsp://{HOST}:{tree.port}{p}")) for p in paths}
        for p in paths:
            wait_http(f"http://{HOST}:{tree.port}/streams{p}.flv")
        kids = ", ".join(sorted(tree.children()))
        print(f"soak: {args.publishers} publishers (320x240 H.264 300 kbit/s + AAC, RTSP/TCP), {args.players} "
              f"churning players (watch {args.watch} s) over {args.procs} load processes, "
              f"{args.minutes:g} min; tree: supervisor, {kids}")
        print(machine_note(), flush=True)
        load = Load(tree.port, paths, args.players, args.procs, args.watch)
        t0 = time.monotonic()
        prev_marks = load.mark()
        minute_marks = prev_marks
        restarts = 0
        next_sample = t0 + SAMPLE
        join_max: dict[str, float] = {}
        rest: list[dict[str, Any]] = []
        while True:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            next_sample += SAMPLE
            for p, proc in pushers.items():
                if proc.poll() is not None:  # a publisher that dropped out comes back, and is counted
                    restarts += 1
                    procs.remove(proc)
                    pushers[p] = procs.add(push(media, f"rtsp://{HOST}:{tree.port}{p}"))
            marks = load.mark()
            mem = tree.memory()
            t = time.monotonic() - t0
            conns = sum(int(m["conns"]) for m in marks)
            fds = sum(m.fds for m in mem)
            rings = tree.shm_bytes(hls=False)
            sample = {"t": t, "pss": float(sum(m.pss for m in mem)), "rss": float(sum(m.rss for m in mem)),
                      "fds": float(fds), "fds_net": float(fds - conns), "rings": float(rings)}
            sample["pss_net"] = sample["pss"] - rings
            samples.append(sample)
            for m in marks:
                for proto, v in m["join_max"].items():
                    join_max[proto] = max(join_max.get(proto, 0.0), v)
            if len(samples) % int(60 / SAMPLE) and t < args.minutes * 60 - 1:
                continue
            active = sum(_sum(marks, "active").values())
            done = _diff(_sum(minute_marks, "sessions"), _sum(marks, "sessions"))
            errs = _diff(_errors(minute_marks), _errors(marks))
            cpu = [(float(b["cpu"]) - float(a["cpu"])) / max(1e-9, float(b["t"]) - float(a["t"]))
                   for a, b in zip(minute_marks, marks)]
            j_sum = _diff_f(_sum_f(minute_marks, "join_sum"), _sum_f(marks, "join_sum"))
            j_n = _diff(_sum(minute_marks, "join_n"), _sum(marks, "join_n"))
            joins = " ".join(f"{k}={1000 * j_sum.get(k, 0.0) / n:.0f}/{1000 * join_max.get(k, 0.0):.0f}"
                             for k, n in sorted(j_n.items()))
            join_max = {}
            minute_marks = marks
            new_errors, seen_errors = log_errors(tree, seen_errors)
            print(f"[{t / 60:5.1f} min] PSS {mib(sample['pss'])} MiB (rings {mib(rings)})  "
                  f"RSS {mib(sample['rss'])} MiB  fds "
                  + " ".join(f"{m.name}={m.fds}" for m in mem)
                  + f" (beyond the players' {conns} connections: {fds - conns})"
                  + f"  players {active}  sessions {sum(done.values())}  client cpu "
                  + "+".join(f"{100 * c:.0f}" for c in cpu) + "%", flush=True)
            print("           sessions " + " ".join(f"{k}={v}" for k, v in sorted(done.items())))
            print("           join ms mean/max " + joins)
            print("           errors   " + (" ".join(f"{k}={v}" for k, v in sorted(errs.items())) or "none")
                  + f"; server log errors {len(new_errors)}; publisher restarts {restarts}", flush=True)
            for line in new_errors[:5]:
                print(f"           server: {line[:200]}")
            if t >= args.minutes * 60 - 1:
                break
            if not rest and t >= WARMUP - 1:
                rest.append(at_rest(tree, load, "after warm-up"))
                next_sample = time.monotonic() + SAMPLE
        rest.append(at_rest(tree, load, "at the end"))
        total_errs = _diff(_errors(prev_marks), _errors(minute_marks))
        print()
        print(f"errors over the run: {sum(total_errs.values())} "
              f"({' '.join(f'{k}={v}' for k, v in sorted(total_errs.items())) or 'none'}); "
              f"sessions: {sum(_diff(_sum(prev_marks, 'sessions'), _sum(minute_marks, 'sessions')).values())}")
        ok = True
        if len(rest) < 2:
            print(f"too short for a growth figure (the first {WARMUP / 60:g} min are warm-up)")
            ok = False
        else:
            print("growth after warm-up, at rest (PSS beyond the rings and fds judged; the rings' touched pages "
                  "grow until each wraps, bounded by design):")
            restarted = sorted(n for n, pid in rest[-1]["pids"].items() if rest[0]["pids"].get(n) != pid)
            if restarted:
                print(f"  note: restarted between the two: {', '.join(restarted)} (a fresh process is smaller)")
            for key, what, unit, judged in (("pss_net", "PSS beyond the rings", "MiB", True),
                                            ("fds", "fds", "", True), ("pss", "PSS", "MiB", False),
                                            ("rings", "rings' touched pages", "MiB", False),
                                            ("rss", "RSS", "MiB", False), ("hls", "HLS files", "MiB", False)):
                base, final = rest[0][key], rest[-1][key]
                g = (final - base) / base if base else 0.0
                verdict = ("PASS" if abs(g) <= LIMIT else "FAIL") if judged else "(shown only)"
                ok = ok and verdict != "FAIL"
                fmt = mib if unit else (lambda v: f"{v:.0f}")
                print(f"  {what:>21}: {fmt(base)} -> {fmt(final)} {unit} ({100 * g:+.1f}%): {verdict}")
            print("growth after warm-up, under load (mean of the first minute after warm-up against the last; "
                  "moves with how many players are connected, shown only):")
            for key, what, unit in (("pss_net", "PSS beyond the rings", "MiB"), ("pss", "PSS", "MiB"),
                                    ("rss", "RSS", "MiB"), ("fds", "fds", ""),
                                    ("fds_net", "fds beyond the players' TCP connections", "")):
                base, final, g = _growth(samples, key)
                fmt = mib if unit else (lambda v: f"{v:.0f}")
                print(f"  {what:>21}: {fmt(base)} -> {fmt(final)} {unit} ({100 * g:+.1f}%)")
        print(f"soak: {'PASS' if ok else 'FAIL'} (limit +-{100 * LIMIT:.0f}% after {WARMUP / 60:g} min of warm-up)",
              flush=True)
    finally:
        if load is not None:
            load.close()
        report_leftovers(procs.stop_all())
        if tree is not None:
            late, _ = log_errors(tree, seen_errors)
            print(f"server log errors while stopping: {len(late)}")
            for line in late[:5]:
                print(f"  server: {line[:200]}")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
