"""Recording's CPU cost per stream, on this machine.

    python bench/record.py [--streams 8] [--seconds 15] [--segment 10]

N ffmpeg publishers push a 2 Mbit/s 720p H.264 + AAC stream each over
RTSP/TCP into one shard. The shard's CPU is measured over a window with no
recording, then a rule that records every one of them is added through the
REST API (it applies to live streams at once) and the same window is
measured again: the difference per stream is what recording costs (the
fMP4 segmenter, the files' writes; the fsync at each file's close runs in
the shard's file thread and counts too). Files go to a temporary folder on
the disk under /tmp, removed at the end with everything else this started.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST, HubTree, Procs, cpu_seconds, machine_note, make_media, push, report_leftovers, wait_http  # noqa: E402


def _api(port: int, method: str, path: str, token: str = "", body: object = None) -> object:
    url = f"http://{HOST}:{port}{path}" + (f"{'&' if '?' in path else '?'}token={token}" if token else "")
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
    return json.loads(text) if text else None


def window(pid: int, seconds: float) -> float:
    """The process's CPU over ``seconds``, in cores."""
    c0, t0 = cpu_seconds([pid]), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds([pid]) - c0) / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--segment", type=float, default=10.0, help="seconds per recorded file")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-record-"))
    rec = work / "rec"
    (work / "config.json").write_text(json.dumps({"recordings": str(rec)}))
    procs = Procs()
    try:
        media = make_media(work)
        tree = procs.add(HubTree(work, shards=1, fronts=1, extra=("--config", str(work / "config.json"))))
        tree.wait_ready()
        shard = next(p for name, p in tree.children().items() if name.startswith("shard-"))
        for i in range(args.streams):
            procs.add(push(media, f"rtsp://{HOST}:{tree.port}/rec/s{i}"))
        for i in range(args.streams):
            wait_http(f"http://{HOST}:{tree.port}/streams/rec/s{i}.flv")
        password = json.loads((work / "data" / "admin.password").read_text())["admin"]
        token = _api(tree.port, "POST", "/api/v1/login", body={"username": "admin", "password": password})
        assert isinstance(token, dict)
        access = token["access_token"]
        time.sleep(2.0)
        base = window(shard.pid, args.seconds)
        _api(tree.port, "POST", "/api/v1/recordings", access, {"pattern": "/rec/", "segment": args.segment})
        time.sleep(2.0)
        recording = window(shard.pid, args.seconds)
        status = _api(tree.port, "GET", "/api/v1/recordings", access)
        assert isinstance(status, dict)
        per = (recording - base) / args.streams
        print(machine_note())
        print(f"{args.streams} streams of 2 Mbit/s H.264 720p25 + AAC, {args.segment:g} s files, "
              f"{args.seconds:g} s windows")
        print(f"shard CPU: {100 * base:.1f}% of a core without recording, {100 * recording:.1f}% recording all "
              f"-> recording costs {100 * per:.2f}% of a core per stream "
              f"({100 * base / args.streams:.2f}% per stream for the ingest itself)")
        print(f"recorded: {len(status['recording'])} streams, {status['files']} files, "
              f"{status['bytes'] / 2**20:.1f} MiB written, {status['errors']} errors")
    finally:
        report_leftovers(procs.stop_all())
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
