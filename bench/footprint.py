"""Footprint: memory and CPU of an idle tree, per stream and per player.

    python bench/footprint.py [--shards 2] [--fronts 2] [--seconds 60] [--streams 100]
                              [--players 2000] [--procs 4] [--save FILE] [--memory-merge]
                              [--entry supervisor=hub.supervisor.main,shard=hub.shard.main,front=hub.api.process]

1. Imports: `python -X importtime -c "import ENTRY"` for each process kind's
   entry module (`--entry`, so it can follow the package's layout): total
   time, modules, and the 10 biggest importers by cumulative time (the entry
   and its parent packages left out).
2. Idle tree: started, left to settle (total RSS steady for 2 s), then per
   process (every descendant of the supervisor: the zygote, and a resource
   tracker if a child started one) USS, PSS and RSS (psutil
   memory_full_info) and the total, and the
   CPU of each process over `--seconds` (% of one core) with its wake-ups
   per second (voluntary context switches: what timers cost when nothing
   happens).
3. Idle streams: `--streams` light synthetic RTSP/TCP publishers (one
   process, bench/_rtsp_client.py, 5 fps, ~3 KB/s each): the tree's memory
   and the difference per stream, beside the shared-memory pages the rings
   have touched.
4. Players: half of `--players` HTTP-FLV readers of one of those streams
   (bench/players.py over `--procs` processes), then all of them: the tree's
   memory per player (against no players, and the marginal cost of the
   second half), and how many kept up. The stream is light, so this is the
   bookkeeping of a player, with little media waiting in its buffers.

`--memory-merge` starts the tree with `memory_merge` (hub/ksm.py): if the
machine runs KSM (`/sys/kernel/mm/ksm/run` = 1, the operator's setting; the
bench never changes it), the idle figures are taken once KSM has merged
what it can (its pages shared stop growing over two full scans, at most
`--merge-wait` s), and the KSM thread's own CPU is printed beside the
tree's.

Per stream and per player, the pages the rings touched meanwhile are left
out (from /dev/shm): a light stream's ring touches new pages for most of
an hour until it wraps, players or not; the ring's share is printed apart.

Every figure is kept in a JSON file (`--save`, default
bench/.footprint-last.json, git-ignored) and printed beside the previous
run's. PSS splits shared pages (the interpreter, libraries) among every
process mapping them, other users' Python processes included, so on a shared
machine it moves with them; USS differences are the steadier per-stream and
per-player figures. This machine is shared: figures are indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST, PY, ROOT, SERVER_ROOT, HubTree, ProcMem, Procs, machine_note, report_leftovers  # noqa: E402

DEFAULT_ENTRY = "supervisor=hub.supervisor.main,shard=hub.shard.main,front=hub.api.process"
DEFAULT_SAVE = ROOT / "bench" / ".footprint-last.json"
#: The light publishers: 5 fps, an IDR a second.
PUB = {"fps": 5, "gop": 5, "i_size": 2000, "p_size": 300}


# -- figures beside the previous run's ----------------------------------------------------------
def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def beside(now: float, prev: Any, scale: float = 2**20, digits: int = 1) -> str:
    """`now` (scaled) and the previous run's figure in brackets."""
    p = f"{prev / scale:.{digits}f}" if isinstance(prev, (int, float)) else "-"
    return f"{now / scale:>8.{digits}f} ({p:>7})"


def mem_table(rows: list[ProcMem], prev: Any, title: str) -> dict[str, Any]:
    """Print per-process USS/PSS/RSS (MiB) beside the previous run; return the figures."""
    print(f"{title} (MiB; previous run in brackets)")
    print(f"  {'process':<11} {'USS':>18} {'PSS':>18} {'RSS':>18} {'fds':>5}")
    out: dict[str, Any] = {"procs": {}}
    for r in rows:
        old = _get(prev, "procs", r.name) or {}
        print(f"  {r.name:<11} {beside(r.uss, old.get('uss'))} {beside(r.pss, old.get('pss'))} "
              f"{beside(r.rss, old.get('rss'))} {r.fds:>5}")
        out["procs"][r.name] = {"uss": r.uss, "pss": r.pss, "rss": r.rss, "fds": r.fds}
    total = {k: sum(getattr(r, k) for r in rows) for k in ("uss", "pss", "rss")}
    old = _get(prev, "total") or {}
    print(f"  {'total':<11} {beside(total['uss'], old.get('uss'))} {beside(total['pss'], old.get('pss'))} "
          f"{beside(total['rss'], old.get('rss'))}")
    out["total"] = total
    return out


# -- 1. imports ----------------------------------------------------------------------------------
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def importtime(module: str) -> dict[str, Any]:
    """Import `module` in a fresh interpreter: total ms, module count, top 10 importers."""
    r = subprocess.run([PY, "-X", "importtime", "-c", f"import {module}"], cwd=SERVER_ROOT,
                       capture_output=True, text=True, timeout=120)
    rows = []
    for line in r.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1000, int(m.group(1)) / 1000))
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    top = sorted((x for x in rows if x[0] not in parents), key=lambda x: -x[1])[:10]
    return {"ms": sum(x[2] for x in rows), "modules": len(rows), "top": [list(x) for x in top]}


def print_imports(entries: dict[str, str], prev: Any) -> dict[str, Any]:
    out = {}
    for kind, module in entries.items():
        got = importtime(module)
        out[kind] = {"module": module, **got}
        if "error" in got:
            print(f"imports of {kind} ({module}): failed: {got['error']}")
            continue
        old = _get(prev, kind) or {}
        old_ms = f"{old['ms']:.0f}" if "ms" in old else "-"
        print(f"imports of {kind} ({module}): {got['ms']:.0f} ms ({old_ms}), "
              f"{got['modules']} modules ({old.get('modules', '-')}); top 10 by cumulative ms (self ms):")
        for name, cum, self_ms in got["top"]:
            print(f"    {cum:8.1f} {self_ms:7.1f}  {name}")
    return out


# -- 2. idle ---------------------------------------------------------------------------------------
def settle(tree: HubTree, least: float = 5.0, most: float = 30.0) -> None:
    """Until the tree's total RSS has stayed within 1% for 2 s."""
    t0 = time.monotonic()
    last, since = 0, time.monotonic()
    while time.monotonic() - t0 < most:
        now = sum(m.rss for m in tree.memory())
        if abs(now - last) > 0.01 * max(last, 1):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 2.0 and time.monotonic() - t0 >= least:
            return
        time.sleep(0.5)


KSM = Path("/sys/kernel/mm/ksm")


def _ksm(name: str) -> int:
    return int((KSM / name).read_text().split()[0])


def ksmd_cpu() -> float | None:
    """CPU seconds of the kernel's KSM thread so far (None: no ksmd)."""
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == "ksmd":
            t = p.cpu_times()
            return t.user + t.system
    return None


def ksm_merged(most: float) -> dict[str, Any]:
    """Wait until KSM's merging settles (no more pages shared over two full
    scans), at most `most` s; what it says then."""
    try:
        running = _ksm("run") == 1
    except OSError:
        print("memory_merge: no KSM in this kernel (/sys/kernel/mm/ksm)")
        return {"run": None}
    if not running:
        print("memory_merge: KSM is off on this machine (/sys/kernel/mm/ksm/run = 0): nothing merges; "
              "the operator turns it on (deploy/README.md)")
        return {"run": 0}
    t0 = time.monotonic()
    scans, sharing = _ksm("full_scans"), _ksm("pages_sharing")
    while time.monotonic() - t0 < most:
        time.sleep(1.0)
        if _ksm("full_scans") >= scans + 2:
            now = _ksm("pages_sharing")
            if now <= sharing:
                break
            scans, sharing = _ksm("full_scans"), now
    out = {"run": 1, "pages_sharing": _ksm("pages_sharing"), "pages_shared": _ksm("pages_shared"),
           "seconds": round(time.monotonic() - t0, 1)}
    print(f"memory_merge: KSM merged for {out['seconds']:.0f} s: {out['pages_sharing']} pages now share "
          f"{out['pages_shared']} (machine-wide, {out['pages_sharing'] * 4 / 1024:.1f} MiB saved)", flush=True)
    return out


def idle_cpu(tree: HubTree, seconds: float, prev: Any) -> dict[str, Any]:
    procs = tree.processes()

    def snap() -> dict[str, tuple[float, int]]:
        out = {}
        for name, p in procs:
            try:
                t = p.cpu_times()
                out[name] = (t.user + t.system, p.num_ctx_switches().voluntary)
            except psutil.Error:
                pass
        return out

    a, t0 = snap(), time.monotonic()
    time.sleep(seconds)
    b, t1 = snap(), time.monotonic()
    wall = t1 - t0
    print(f"idle CPU over {wall:.0f} s (% of one core; wake-ups per second; previous run in brackets)")
    out: dict[str, Any] = {"seconds": wall, "procs": {}}
    total = 0.0
    for name in b:
        if name not in a:
            continue
        cpu = (b[name][0] - a[name][0]) / wall
        wakes = (b[name][1] - a[name][1]) / wall
        total += cpu
        old = _get(prev, "procs", name) or {}
        print(f"  {name:<11} {beside(100 * cpu, _scaled(old.get('cpu'), 100), 1, 3)} %  "
              f"{beside(wakes, old.get('wakeups'), 1, 1)} /s")
        out["procs"][name] = {"cpu": cpu, "wakeups": wakes}
    print(f"  {'total':<11} {beside(100 * total, _scaled(_get(prev, 'total'), 100), 1, 3)} %")
    out["total"] = total
    return out


def _scaled(v: Any, k: float) -> Any:
    return v * k if isinstance(v, (int, float)) else None


# -- 3. streams --------------------------------------------------------------------------------
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


def per_unit(now: dict[str, Any], base: dict[str, Any], n: int) -> dict[str, float]:
    """Memory per unit between two stages, without the ring pages touched
    meanwhile: a light stream's ring keeps touching new pages until it
    wraps (8 MiB at 3 KB/s takes most of an hour), players or not."""
    ring = now.get("shm", 0) - base.get("shm", 0)
    return {k: (now["total"][k] - base["total"][k] - ring) / n for k in ("uss", "pss", "rss")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--fronts", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0, help="idle CPU window")
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--players", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=4, help="load processes the players are spread over")
    ap.add_argument("--save", type=Path, default=DEFAULT_SAVE)
    ap.add_argument("--entry", default=DEFAULT_ENTRY, help="kind=module,... imported by each process kind")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (server log, media)")
    ap.add_argument("--memory-merge", action="store_true", help="start the tree with memory_merge (KSM)")
    ap.add_argument("--merge-wait", type=float, default=180.0, help="most seconds to wait for KSM's merging")
    ap.add_argument("--publisher", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publisher:
        import uvloop

        uvloop.run(_publisher(int(args.publisher[0]), args.publisher[1].split(",")))
        return

    from players import PlayerPool, measure, stream_rate

    try:
        prev = json.loads(args.save.read_text())
    except (OSError, ValueError):
        prev = {}
    entries = dict(e.split("=", 1) for e in args.entry.split(","))
    res: dict[str, Any] = {"when": datetime.datetime.now().isoformat(timespec="seconds"),
                           "shards": args.shards, "fronts": args.fronts}
    print(f"footprint: {args.shards} shards + {args.fronts} fronts of {SERVER_ROOT}; "
          f"previous run: {prev.get('when', 'none')}")
    print(machine_note(), flush=True)
    res["imports"] = print_imports(entries, prev.get("imports"))
    print(flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    procs = Procs()
    try:
        extra = ("--memory-merge",) if args.memory_merge else ()
        tree: HubTree = procs.add(HubTree(work, args.shards, args.fronts, extra=extra))
        tree.wait_ready()
        settle(tree)
        if args.memory_merge:
            res["ksm"] = ksm_merged(args.merge_wait)
        res["idle"] = mem_table(tree.memory(), prev.get("idle"), "idle tree")
        res["idle"]["shm"] = tree.shm_bytes(hls=False)
        ksmd0 = ksmd_cpu()
        res["idle_cpu"] = idle_cpu(tree, args.seconds, prev.get("idle_cpu"))
        if args.memory_merge and ksmd0 is not None:
            ksmd1 = ksmd_cpu()
            assert ksmd1 is not None
            print(f"  KSM's thread (ksmd, the machine's, not the tree's): "
                  f"{100 * (ksmd1 - ksmd0) / args.seconds:.3f}% of a core over the same window")
        print(flush=True)

        paths = [f"/idle/s{i}" for i in range(args.streams)]
        pub = procs.add(subprocess.Popen([PY, __file__, "--publisher", str(tree.port), ",".join(paths)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        assert pub.stdout is not None
        got = json.loads(pub.stdout.readline() or '{"recording": 0}')["recording"]
        settle(tree)
        rate = PUB["i_size"] + (PUB["gop"] - 1) * PUB["p_size"]
        streams = mem_table(tree.memory(), _get(prev, "streams"),
                            f"with {got}/{args.streams} idle streams ({PUB['fps']} fps, {rate / 1000:.1f} KB/s each)")
        streams["n"] = got
        streams["shm"] = tree.shm_bytes(hls=False)
        streams["per_stream"] = per_unit(streams, res["idle"], max(1, got))
        streams["shm_per_stream"] = (streams["shm"] - res["idle"]["shm"]) / max(1, got)
        old = _get(prev, "streams") or {}
        ps = streams["per_stream"]
        print(f"  per stream, beyond its ring: PSS {beside(ps['pss'], _get(old, 'per_stream', 'pss'), 1024)} KiB,"
              f" USS {beside(ps['uss'], _get(old, 'per_stream', 'uss'), 1024)} KiB; plus the ring's pages touched "
              f"so far {beside(streams['shm_per_stream'], old.get('shm_per_stream'), 1024)} KiB")
        res["streams"] = streams
        print(flush=True)

        if args.players:
            path = paths[0]
            rate_b = stream_rate("http-flv", HOST, tree.port, path, 3.0)
            half = args.players // 2
            pools = []
            stages: dict[str, Any] = {}
            for n in (half, args.players - half):
                pool = PlayerPool("http-flv", HOST, tree.port, [path], n, max(1, args.procs // 2))
                pools.append(pool)
                pool.ready()
                total = sum(p.connected for p in pools)
                settle(tree)
                w = [measure(p, 3.0) for p in pools]
                held = sum(x.held(rate_b) for x in w)
                table = mem_table(tree.memory(), _get(prev, "players", f"at_{total}"),
                                  f"with {total} HTTP-FLV players of {path} ({held} kept up; client CPU "
                                  + ", ".join(x.client_text() for x in w) + ")")
                table["connected"], table["held"], table["shm"] = total, held, tree.shm_bytes(hls=False)
                stages[f"at_{total}"] = table
            players = {"n": args.players, **stages}
            first, last = list(stages.values())[0], list(stages.values())[-1]
            players["per_player"] = per_unit(last, streams, max(1, last["connected"]))
            players["marginal"] = per_unit(last, first, max(1, last["connected"] - first["connected"]))
            fronts = [k for k in last["procs"] if k.startswith("front-")]
            players["fronts_uss_per_player"] = sum(
                last["procs"][k]["uss"] - streams["procs"].get(k, {}).get("uss", 0) for k in fronts
            ) / max(1, last["connected"])
            old = _get(prev, "players") or {}
            print(f"  (tree memory less the ring pages touched meanwhile; the fronts' USS alone: "
                  f"{beside(players['fronts_uss_per_player'], old.get('fronts_uss_per_player'), 1024)} KiB)")
            print(f"  per player: PSS {beside(players['per_player']['pss'], _get(old, 'per_player', 'pss'), 1024)}"
                  f" KiB, USS {beside(players['per_player']['uss'], _get(old, 'per_player', 'uss'), 1024)}"
                  f" KiB; marginal ({first['connected']} -> {last['connected']}): PSS "
                  f"{beside(players['marginal']['pss'], _get(old, 'marginal', 'pss'), 1024)} KiB, USS "
                  f"{beside(players['marginal']['uss'], _get(old, 'marginal', 'uss'), 1024)} KiB")
            res["players"] = players
            for pool in pools:
                pool.close()
        args.save.write_text(json.dumps(res, indent=1))
        print(f"\nsaved to {args.save}")
    finally:
        for p in procs.items:
            if isinstance(p, subprocess.Popen) and p.stdin is not None:
                p.stdin.close()  # the publisher ends on EOF
        report_leftovers(procs.stop_all())
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
