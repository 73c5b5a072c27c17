"""Ingest with the hot path compiled (hub/compiled.py) and from its sources,
in one run: the Python side alone (a replay), then two live trees side by side.

    python bench/ingest.py [--mbps 1] [--seconds 120] [--frames-per-read 1] [--rounds 5]
                           [--live 16] [--live-rounds 4] [--protocol rtsp|rtmp] [--no-replay]
                           [--windows 0,40] [--warmup S]

1. Replay: an RTSP/TCP publisher's bytes through the publisher's hot path
   in one process, no sockets.

What `bench/rtsp.py` measures with real FFmpeg publishers mixes this with
the kernel (reads, ACKs), the event loop and the machine's other load; this
is the part the hot-path code decides, steady enough to compare builds:

- the wire: an H.264 stream of `--mbps` Mbit/s (25 fps, an IDR every 2 s,
  FU-A cut at 1,400 bytes as FFmpeg's) and 64 kbit/s AAC (48 kHz), each RTP
  packet one interleaved `$` frame, `--frames-per-read` frames per read (an
  FFmpeg publisher's packets mostly arrive one or two per wake-up);
- the work: per read what `RtspPublisher.data_received` does on its hot
  path (`IngestSession.count` and `receive_frames`: RTP headers, FU-A and
  AAC depacketising, access units into the stream's shared-memory ring);
- the figure: CPU time (`time.process_time`) per second of media, as % of
  one core per 1 Mbit/s publisher; one untimed round first (the ring's
  pages touched), then the median of `--rounds`.

Two modes, each in a fresh interpreter: the package as installed (its hot
modules compiled by mypyc) and the same modules from their Python sources
(`HUB_PURE_PYTHON=1`), and their ratio.

2. Live (`--live N`, 0: skip): two trees of 1 shard + 1 front at once, one
   as installed and one with `HUB_PURE_PYTHON=1`, each taking N FFmpeg
   publishers of the same file (`--mbps`, 720p25 + AAC) over RTSP/TCP (or
   RTMP, `--protocol rtmp`, on the shared port); the
   shards' CPU over `--live-rounds` windows of 15 s, as % of a core per
   1 Mbit/s publisher, and the ratio per window. Side by side, the
   machine's moods (this VM's CPU time moves by 1.5x between runs) weigh on
   both alike: the ratio is the steady figure; `bench/rtsp.py` gives the
   absolute one. Each tree's reads per publisher per second are printed
   beside its CPU.

   `--windows 0,40`: one compiled tree per `ingest_window` instead (the
   shard's read gate, `hub/shard/read_gate.py`), each against the first;
   `u40` is a tree with `unwatched_ingest_window` 40 (the server's default:
   nobody plays these streams, so that is how a default tree reads them).
   A label ending in `r` (`0r`, `u40r`) records every stream as well (a
   recording rule for `/ingest/`, fMP4 files of 60 s): an NVR's cameras.
   Every other tree, these and the installed/sources pair, runs with
   `unwatched_ingest_window` 0: read at once unless its label says.
   `--warmup 65` starts the windows once the rings have gone round.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (PY, SERVER_ROOT, Proc, cpu_seconds, free_port, machine_note, make_media, push, stop,  # noqa: E402
                     wait_http, wait_port)

FPS = 25
GOP = 50
AUDIO_RATE = 48000
AUDIO_FRAME = 1024
AUDIO_BYTES = 64_000 // 8 * AUDIO_FRAME // AUDIO_RATE  # 64 kbit/s


def _wire(mbps: float, seconds: float, per_read: int) -> tuple[list[bytes], int]:
    """The reads of `seconds` of media, and the media's bytes (RTP payloads)."""
    from hub.media.rtp_aac import AacPacketizer
    from hub.media.rtp_h264 import H264Packetizer

    rnd = random.Random(1)
    sps = bytes.fromhex("6764001fac2b402802dd80b5010101400000fa40003a983a1800")
    pps = bytes.fromhex("68ee3cb0")
    video, audio = H264Packetizer(96, 1), AacPacketizer(97, 2)
    frame_bytes = int(mbps * 1e6 / 8 / FPS)
    frames: list[tuple[float, bytes]] = []
    payload = 0
    for f in range(int(seconds * FPS)):
        key = f % GOP == 0
        size = frame_bytes * 8 if key else frame_bytes * (GOP - 8) // (GOP - 1)
        nals = ([sps, pps] if key else []) + [bytes([0x65 if key else 0x41]) + rnd.randbytes(size)]
        for p in video.packetize(b"".join(len(n).to_bytes(4, "big") + n for n in nals), f * 3600):
            frames.append((f / FPS, b"$\x00" + len(p).to_bytes(2, "big") + p))
            payload += len(p)
    for a in range(int(seconds * AUDIO_RATE / AUDIO_FRAME)):
        for p in audio.packetize(rnd.randbytes(AUDIO_BYTES), a * AUDIO_FRAME):
            frames.append((a * AUDIO_FRAME / AUDIO_RATE, b"$\x02" + len(p).to_bytes(2, "big") + p))
            payload += len(p)
    frames.sort(key=lambda x: x[0])  # stable: a frame's packets stay in order
    wire = [f for _, f in frames]
    return [b"".join(wire[i:i + per_read]) for i in range(0, len(wire), per_read)], payload


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(SERVER_ROOT))  # the checkout under test, not the installed one
    import asyncio

    from hub import compiled

    from hub.child import ChildArgs
    from hub.config import Config
    from hub.media.stream_desc import TrackDesc
    from hub.shard.ingest import IngestSession
    from hub.shard.streams import StreamTable

    reads, payload = _wire(args.mbps, args.seconds, args.frames_per_read)

    class Source:
        def close(self) -> None:
            pass

    async def run() -> list[float]:
        streams = StreamTable(ChildArgs("shard", 0, -1, "bi" + os.urandom(4).hex(), tempfile.gettempdir(),
                                        Config()), lambda reader, s: None)
        ingest = IngestSession(streams, "/bench/ingest", "127.0.0.1:40000", Source(), timeout=3600.0)
        try:
            ingest.go_live([
                TrackDesc(0, "video", "H264", 96, 90000, fmtp="packetization-mode=1", framerate=FPS),
                TrackDesc(1, "audio", "MPEG4-GENERIC", 97, AUDIO_RATE, 2, sample_rate=AUDIO_RATE, asc=b"\x11\x90",
                          fmtp="profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;"
                               "indexdeltalength=3;config=1190")])
            ingest.bind_interleaved(0, (0, 1))
            ingest.bind_interleaved(1, (2, 3))
            times = []
            for _ in range(args.rounds + 1):  # the first touches the ring's pages
                t0 = time.process_time()
                for r in reads:
                    ingest.count(len(r))
                    ingest.receive_frames(r)
                times.append(time.process_time() - t0)
            st = ingest.stats()
            assert st.bad_rtp == 0 and st.entries > 0, st
            return times[1:]
        finally:
            ingest.close()
            streams.close_all()

    times = asyncio.run(run())
    print(json.dumps({"mode": args.mode, "compiled": sorted(compiled.modules()), "times": times,
                      "media_s": args.seconds, "mbit": payload * 8 / args.seconds / 1e6,
                      "reads": len(reads)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mbps", type=float, default=1.0, help="video bit rate")
    ap.add_argument("--seconds", type=float, default=120.0, help="media replayed per round")
    ap.add_argument("--frames-per-read", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--live", type=int, default=16, help="publishers per tree in the live part (0: skip it)")
    ap.add_argument("--live-rounds", type=int, default=4)
    ap.add_argument("--protocol", choices=("rtsp", "rtmp"), default="rtsp", help="the live publishers' protocol")
    ap.add_argument("--no-replay", action="store_true", help="only the live part")
    ap.add_argument("--windows", default="",
                    help="live part: one tree per `ingest_window` (ms, e.g. 0,40; u40: unwatched_ingest_window 40), "
                         "all compiled, instead of "
                         "installed against sources")
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of live ingest before the first window (~65: once the rings have gone round)")
    ap.add_argument("--mode", choices=("installed", "sources"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        child(args)
        return
    print(machine_note())
    if not args.no_replay:
        replay(args)
    if args.live:
        live(args)


def replay(args: argparse.Namespace) -> None:
    out: dict[str, dict[str, Any]] = {}
    for mode in ("sources", "installed"):
        argv = [PY, str(Path(__file__).resolve()), "--mode", mode, "--mbps", str(args.mbps),
                "--seconds", str(args.seconds), "--frames-per-read", str(args.frames_per_read),
                "--rounds", str(args.rounds)]
        env = {**os.environ, "HUB_PURE_PYTHON": "1" if mode == "sources" else "0"}
        res = subprocess.run(argv, cwd=SERVER_ROOT, capture_output=True, text=True, timeout=600, env=env)
        if res.returncode != 0:
            raise SystemExit(f"{mode}: {res.stderr.strip()}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        cpu = statistics.median(r["times"])
        r["pct_per_mbit"] = 100 * cpu / r["media_s"] / r["mbit"]
        out[mode] = r
        what = f"{len(r['compiled'])} compiled modules" if r["compiled"] else "nothing compiled"
        print(f"{mode:>9} ({SERVER_ROOT}, {what}): {r['mbit']:.2f} Mbit/s of RTP payload, "
              f"{r['reads']} reads of {args.frames_per_read} frame(s) per {args.seconds:g} s: "
              f"CPU {1e6 * cpu / r['reads']:.2f} us per read, "
              f"{r['pct_per_mbit']:.4f}% of a core per 1 Mbit/s publisher "
              f"(rounds {', '.join(f'{t:.3f}' for t in r['times'])} s)", flush=True)
    ratio = out["sources"]["pct_per_mbit"] / out["installed"]["pct_per_mbit"]
    print(f"replay, as installed: {ratio:.2f}x less CPU than from the sources", flush=True)


def reads(pids: list[int]) -> int:
    """Read syscalls so far (/proc/PID/io syscr)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("syscr"))
        except (OSError, StopIteration, ValueError):
            pass
    return total


def tree_kinds(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """The trees the live part runs side by side, by label: their environment."""
    at_once = {"HUB_UNWATCHED_INGEST_WINDOW": "0"}
    if args.windows:
        kinds: dict[str, dict[str, str]] = {}
        for w in (x.strip() for x in args.windows.split(",")):
            recorded = {"record": "1"} if w.endswith("r") else {}
            w = w.rstrip("r")
            suffix = ", recorded" if recorded else ""
            if w.startswith("u"):
                kinds[f"unwatched {int(w[1:])} ms{suffix}"] = {
                    "HUB_PURE_PYTHON": "0", "HUB_INGEST_WINDOW": "0", "HUB_UNWATCHED_INGEST_WINDOW": str(int(w[1:])),
                    **recorded}
            else:
                kinds[f"window {int(w)} ms{suffix}"] = {"HUB_PURE_PYTHON": "0", "HUB_INGEST_WINDOW": str(int(w)),
                                                        **at_once, **recorded}
        return kinds
    return {"installed": {"HUB_PURE_PYTHON": "0", **at_once}, "sources": {"HUB_PURE_PYTHON": "1", **at_once}}


def live(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    media = make_media(work, name=f"bench_{args.mbps:g}m.mp4", bitrate=f"{int(args.mbps * 1000)}k")
    mbit = media.stat().st_size * 8 / 20 / 1e6  # make_media's 20 s, as pushed
    kinds = tree_kinds(args)
    trees: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    pushers: list[Proc] = []
    try:
        for n, (label, extra) in enumerate(kinds.items()):
            port = free_port()
            env = {**os.environ, **extra, "HUB_RTMP_PORT": "0"}
            config: list[str] = []
            if env.pop("record", ""):
                rules = work / f"tree{n}.json"
                rules.write_text(json.dumps({"record": [{"pattern": "/ingest/", "format": "fmp4", "segment": 60,
                                                         "retention": {"max_age": "1h"}}]}))
                config = ["--config", str(rules)]
            trees[label] = (subprocess.Popen(
                [PY, "-m", "hub", "--listen", f"127.0.0.1:{port}", "--data", str(work / f"tree{n}"), "--shards", "1",
                 "--fronts", "1", "--log-level", "warning", *config], cwd=SERVER_ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
        for _proc, port in trees.values():
            wait_port(port)
        for i in range(args.live):  # alternately, so all see the same start
            for _proc, port in trees.values():
                if args.protocol == "rtmp":
                    pushers.append(subprocess.Popen(
                        ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re", "-stream_loop", "-1",
                         "-i", str(media), "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/ingest/s{i}"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
                else:
                    pushers.append(push(media, f"rtsp://127.0.0.1:{port}/ingest/s{i}"))
        for _proc, port in trees.values():
            for i in range(args.live):
                wait_http(f"http://127.0.0.1:{port}/streams/ingest/s{i}.flv")
        shards = {label: [c.pid for c in psutil.Process(proc.pid).children(recursive=True)
                          if "shard" in " ".join(c.cmdline())] for label, (proc, _port) in trees.items()}
        print(f"waiting {max(3.0, args.warmup):.0f} s (--warmup)", flush=True)
        time.sleep(max(3.0, args.warmup))
        labels = list(kinds)
        print(f"live: {args.live} {'RTMP' if args.protocol == 'rtmp' else 'RTSP/TCP'} publishers of {mbit:.2f} "
              f"Mbit/s on each of {len(labels)} trees (1 shard + 1 front), shard CPU per 1 Mbit/s publisher, "
              "and each publisher's reads per second", flush=True)
        ratios: dict[str, list[float]] = {label: [] for label in labels[1:]}
        for r in range(args.live_rounds):
            c0, r0, t0 = ({m: cpu_seconds(p) for m, p in shards.items()}, {m: reads(p) for m, p in shards.items()},
                          time.monotonic())
            time.sleep(15.0)
            c1, r1, t1 = ({m: cpu_seconds(p) for m, p in shards.items()}, {m: reads(p) for m, p in shards.items()},
                          time.monotonic())
            pct = {m: 100 * (c1[m] - c0[m]) / (t1 - t0) / args.live / mbit for m in shards}
            rd = {m: (r1[m] - r0[m]) / (t1 - t0) / args.live for m in shards}
            for label in labels[1:]:
                ratios[label].append(pct[labels[0]] / pct[label])
            print(f"  window {r + 1}: " + ", ".join(f"{m} {pct[m]:.3f}% ({rd[m]:.0f} reads/s)" for m in labels)
                  + "; " + ", ".join(f"{m} {ratios[m][-1]:.2f}x" for m in labels[1:])
                  + f" (load average {os.getloadavg()[0]:.1f})", flush=True)
        for label, rs in ratios.items():
            print(f"live, {label}: {min(rs):.2f}-{max(rs):.2f}x less shard CPU than {labels[0]}")
    finally:
        for p in pushers:
            stop(p)
        for proc, _port in trees.values():
            stop(proc, 20.0)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
