"""Chaos: kill a random shard or front every 10 s; only its own players notice.

    python bench/chaos.py [--seconds 120] [--every 10] [--per-front 1]

Starts a tree of 2 shards and 2 fronts and pushes one stream per shard
(paths chosen with hub.placement.shard_of) with ffmpeg, restarted whenever
it exits. Players watch every stream over HTTP-FLV and over RTSP/TCP from
every front (`--per-front` each; which front serves a connection is found
from the fronts' sockets with psutil, and a player that landed elsewhere
moves back make-before-break); a player that loses its connection
reconnects at once. Every `--every` seconds the bench SIGKILLs a random
shard or front (a child of the supervisor, found by its title
`ipchub: shard-N` / `front-N`) and the supervisor restarts it.

Per kill it prints what was killed, how long each stream was dark (no new
bytes at any of its players), how long the killed process's own players
took to get media again, and the longest gap seen by players that the kill
must not touch — players of streams not on the killed shard, or players
not on the killed front. Any such gap over 1 s is a FAIL.

A gap is a silence between two reads of a player longer than 0.1 s (the
stream sends a video frame every 40 ms and audio more often; "<0.1" means
no such silence). It belongs to the kill window it started in, the window
opening 0.5 s before the kill: a silence starts at the last read before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import HOST, PY, HubTree, Procs, machine_note, make_media, push, report_leftovers  # noqa: E402
from _common import title_of, wait_http  # noqa: E402

from hub.placement import shard_of  # noqa: E402

GAP_MIN = 0.1
GAP_FAIL = 1.0
LEAD = 0.5
PROTOS = ("http-flv", "rtsp")
HOME_TRIES = 10  # reconnects aimed at the home front before taking any


# -- the load process: players that record their silences ------------------------------
def front_of(supervisor: int, local_port: int) -> str:
    """Which front holds the server side of our TCP connection from `local_port`."""
    try:
        kids = psutil.Process(supervisor).children()
    except psutil.Error:
        return "?"
    for p in kids:
        name = title_of(p)
        if not name.startswith("front-"):
            continue
        try:
            for c in p.net_connections("tcp"):
                if c.raddr and c.raddr.port == local_port:
                    return name
        except psutil.Error:
            continue
    return "?"


def fronts_alive(supervisor: int) -> set[str]:
    try:
        return {n for n in (title_of(p) for p in psutil.Process(supervisor).children()) if n.startswith("front-")}
    except psutil.Error:
        return set()


class Watch:
    """One player's record: its silences, each with the front it was on."""

    def __init__(self, stream: str, proto: str, home: str) -> None:
        self.stream, self.proto, self.home = stream, proto, home
        self.front = "?"
        self.last_front = "?"
        self.last = 0.0
        self.gaps: list[tuple[float, float, str]] = []
        self.reconnects = 0
        self.placed = False  # its first connection is kept

    def on_bytes(self, n: int) -> None:
        now = time.monotonic()
        if self.last and now - self.last > GAP_MIN:
            self.gaps.append((self.last, now, self.last_front))
        self.last = now
        self.last_front = self.front


async def _player(w: Watch, port: int, supervisor: int, stop: asyncio.Event) -> None:
    import _clients as cl

    async def connect(any_front_after: int) -> tuple[cl.Player, str]:
        tries = 0
        while True:
            try:
                p = await cl.open_player(w.proto, HOST, port, w.stream, w)
            except cl.ClientError:
                await asyncio.sleep(0.2)  # the stream is not back yet
                continue
            front = front_of(supervisor, p.local_port)
            tries += 1
            if front == w.home or tries >= any_front_after or w.home not in fronts_alive(supervisor):
                return p, front
            p.close()
            await asyncio.sleep(0.05)

    player, w.front = await connect(HOME_TRIES * 10)
    w.placed = True
    while not stop.is_set():
        try:
            await asyncio.wait_for(asyncio.shield(player.lost), 3.0)
        except asyncio.TimeoutError:
            pass
        if stop.is_set():
            break
        if player.lost.done():
            w.reconnects += 1
            w.front = "?"
            player, w.front = await connect(HOME_TRIES)
        elif w.front != w.home and w.home in fronts_alive(supervisor):
            new, front = await connect(HOME_TRIES)  # make before break: no silence
            player.close()
            player, w.front = new, front
    player.close()


async def _worker(port: int, supervisor: int, streams: list[str], fronts: int, per_front: int) -> None:
    watches = [Watch(s, proto, f"front-{f}") for s in streams for proto in PROTOS
               for f in range(fronts) for _ in range(per_front)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_player(w, port, supervisor, stop)) for w in watches]
    deadline = time.monotonic() + 60
    while any(not w.placed for w in watches) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    placed = sum(1 for w in watches if w.front == w.home)
    print(json.dumps({"ready": len(watches), "playing": sum(1 for w in watches if w.last), "home": placed}),
          flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.readline()
    now = time.monotonic()
    out = []
    for w in watches:
        gaps = list(w.gaps)
        if now - w.last > GAP_MIN:
            gaps.append((w.last, now, w.last_front))  # still silent
        out.append({"stream": w.stream, "proto": w.proto, "home": w.home, "gaps": gaps,
                    "reconnects": w.reconnects})
    print(json.dumps({"players": out, "now": now}), flush=True)
    stop.set()
    await asyncio.wait(tasks, timeout=5)
    for w, t in zip(watches, tasks):
        if t.done() and not t.cancelled() and t.exception() is not None:
            # A player's task that died stays silent to the end: say why.
            print(f"  player {w.stream} {w.proto} (home {w.home}) stopped: {t.exception()!r}",
                  file=sys.stderr, flush=True)
        t.cancel()


# -- the parent -------------------------------------------------------------------------------
def pick_paths(shards: int) -> list[str]:
    """One path per shard: /chaos/sN, the first N that hash to it."""
    out: dict[int, str] = {}
    i = 0
    while len(out) < shards:
        path = f"/chaos/s{i}"
        out.setdefault(shard_of(path, shards), path)
        i += 1
    return [out[s] for s in range(shards)]


def dark_of(players: list[dict[str, Any]], lo: float, hi: float) -> float:
    """Longest time in [lo, hi) during which every one of `players` was silent."""
    if not players:
        return 0.0
    events: list[tuple[float, int]] = []
    for p in players:
        for a, b, _ in p["gaps"]:
            a, b = max(a, lo), min(b, hi)
            if b > a:
                events += [(a, 1), (b, -1)]
    events.sort(key=lambda e: (e[0], e[1]))
    depth, start, best = 0, 0.0, 0.0
    for t, d in events:
        if d == 1:
            depth += 1
            if depth == len(players):
                start = t
        else:
            if depth == len(players):
                best = max(best, t - start)
            depth -= 1
    return best


def secs(v: float) -> str:
    return f"{v:.2f} s" if v > 0 else f"<{GAP_MIN:g} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="how long kills go on")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between kills")
    ap.add_argument("--per-front", type=int, default=1, help="players per stream, protocol and front")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the kill order (0: random)")
    ap.add_argument("--verbose", action="store_true", help="list every silence, not only those over 1 s")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (server log, media)")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import uvloop

        port, sup, streams, fronts, per = args.worker
        uvloop.run(_worker(int(port), int(sup), streams.split(","), int(fronts), int(per)))
        return

    shards = fronts = 2
    rnd = random.Random(args.seed or None)
    work = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    procs = Procs()
    failed = False
    try:
        media = make_media(work, "chaos.mp4", size="320x240", bitrate="300k", gop=25, seconds=10, audio_kbps=48)
        tree: HubTree = procs.add(HubTree(work, shards, fronts))
        tree.wait_ready()
        paths = pick_paths(shards)
        on_shard = {p: f"shard-{shard_of(p, shards)}" for p in paths}
        logs = {p: open(work / f"ffmpeg{i}.log", "wb") for i, p in enumerate(paths)}
        pushers = {p: procs.add(push(media, f"rtsp://{HOST}:{tree.port}{p}", logs[p])) for p in paths}
        for p in paths:
            wait_http(f"http://{HOST}:{tree.port}/streams{p}.flv")
        print(f"chaos: {shards} shards, {fronts} fronts; streams "
              + ", ".join(f"{p} on {on_shard[p]}" for p in paths)
              + f"; players: {args.per_front} per stream x {'/'.join(PROTOS)} x front; "
              f"a kill every {args.every:g} s for {args.seconds:g} s")
        print(machine_note(), flush=True)
        worker = procs.add(subprocess.Popen(
            [PY, __file__, "--worker", str(tree.port), str(tree.pid), ",".join(paths), str(fronts),
             str(args.per_front)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        assert worker.stdin is not None and worker.stdout is not None
        ready = json.loads(worker.stdout.readline())
        print(f"players: {ready['playing']}/{ready['ready']} playing, {ready['home']} on their home front",
              flush=True)

        kills: list[tuple[float, str, int]] = []
        restarts = {p: 0 for p in paths}
        t0 = time.monotonic()
        next_kill = t0 + args.every
        end = t0 + args.seconds
        while time.monotonic() < end + args.every:  # the last kill gets a whole window too
            for p, proc in pushers.items():
                if proc.poll() is not None:  # the publisher lost its shard: push again
                    restarts[p] += 1
                    procs.remove(proc)
                    pushers[p] = procs.add(push(media, f"rtsp://{HOST}:{tree.port}{p}", logs[p]))
            now = time.monotonic()
            if now >= next_kill and now < end:
                kids = {n: k for n, k in tree.children().items() if n.startswith(("shard-", "front-"))}
                name = rnd.choice(sorted(kids))
                pid = kids[name].pid
                os.kill(pid, signal.SIGKILL)
                kills.append((time.monotonic(), name, pid))
                print(f"  t={now - t0:5.1f} s  SIGKILL {name} (pid {pid})", flush=True)
                next_kill += args.every
            time.sleep(0.1)

        worker.stdin.write("report\n")
        worker.stdin.flush()
        report = json.loads(worker.stdout.readline())
        players = report["players"]
        print()
        print(f"{'t (s)':>6}  {'killed':<8}  " + "  ".join(f"{'dark ' + p:>16}" for p in paths)
              + f"  {'own players back':>16}  {'others max gap':>14}  verdict")
        for k, (t_kill, name, _pid) in enumerate(kills):
            # A silence starts at a player's last read before it, so a kill's
            # silences start a little before the kill itself.
            lo = t_kill - LEAD
            hi = kills[k + 1][0] - LEAD if k + 1 < len(kills) else report["now"]
            dark = {p: dark_of([q for q in players if q["stream"] == p], lo, hi) for p in paths}

            def mine(q: dict[str, Any], gap_front: str) -> bool:
                if name.startswith("shard-"):
                    return on_shard[str(q["stream"])] == name
                return gap_front == name or gap_front == "?"

            own, others = 0.0, 0.0
            notes = []
            for q in players:
                for a, b, front in q["gaps"]:
                    if lo <= a < hi:
                        if mine(q, front):
                            own = max(own, b - a)
                        else:
                            others = max(others, b - a)
                        if b - a > GAP_FAIL or args.verbose:
                            notes.append(f"        {q['stream']} {q['proto']} (home {q['home']}) on {front}: "
                                         f"silent {b - a:.2f} s from kill+{a - t_kill:.2f} s"
                                         + ("" if mine(q, front) else "  <- must not"))
            bad = others > GAP_FAIL
            failed = failed or bad
            print(f"{t_kill - t0:6.1f}  {name:<8}  " + "  ".join(f"{secs(dark[p]):>16}" for p in paths)
                  + f"  {secs(own):>16}  {secs(others):>14}  {'FAIL' if bad else 'ok'}")
            for line in notes:
                print(line)
        print()
        print("publisher restarts: " + ", ".join(f"{p} {n}" for p, n in restarts.items())
              + "; player reconnects: " + str(sum(int(q["reconnects"]) for q in players)))
        print(f"chaos: {'FAIL' if failed else 'PASS'} (players a kill must not touch saw "
              f"{'a' if failed else 'no'} gap > {GAP_FAIL:g} s)", flush=True)
        worker.stdin.close()
    finally:
        report_leftovers(procs.stop_all())
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
