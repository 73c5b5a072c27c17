"""Push->play latency and late-joiner start time, on this machine (loopback).

    python bench/latency.py [--seconds 10] [--joins 20] [--hls 6] [--fanout-window MS] [--ingest-window MS]
                            [--unwatched-ingest-window MS]

Targets (project brief): push->play latency p50 <= 5 ms; a late joiner's first
frame < 150 ms.

1. Latency. A publisher process (bench/_rtsp_client.py) pushes a synthetic
   25 fps H.264 stream over RTSP/TCP (GOP 1 s, 60 KB IDR / 8 KB P frames, so
   FU-A), each frame carrying its send time (CLOCK_MONOTONIC, one clock for
   every process here). Players in another process take the time out of each
   access unit they receive and record receive - send. Over HTTP-FLV, WS-FLV
   and RTSP/TCP, with 1 player, then with 100 players of the stream: 5
   measuring while 95 others (a third process) read and discard.
2. Late joiner. With the stream running, new players connect at random
   moments of the GOP; time from connect() (RTSP: from sending DESCRIBE) to
   the last byte of the first complete keyframe (FLV: the first keyframe tag
   after the sequence header; RTSP: the first IDR access unit depacketised).
   Nobody else plays the stream then, so the server reads its publisher in
   `unwatched_ingest_window` windows (40 ms by default) until a joiner
   arrives; `--unwatched-ingest-window 0` reads it at once throughout.
3. HLS. Streams just pushed (no segmenter running yet): time from the first
   playlist request to the playlist answered.

The server, publishers and players are all started here and terminated by
PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _rtsp_client as rc  # noqa: E402
from _common import HOST, PY, ROOT, SERVER_ROOT, free_port, pct, stop, wait_http, wait_port  # noqa: E402

from hub.media.access_unit import AccessUnit  # noqa: E402
from hub.media.flv import TAG_VIDEO, FlvReader, FlvTag, FlvVideo, parse_video  # noqa: E402

PROTOS = ("http-flv", "ws-flv", "rtsp")
#: Bytes a second of the stream's frames: one I and 24 P frames.
STREAM_RATE = rc.I_SIZE + (rc.GOP - 1) * rc.P_SIZE
WARMUP = 1.5  # the cached GOP arrives in a burst on join; not latency


# -- FLV players (HTTP and WebSocket) ---------------------------------------------
class FlvClient(asyncio.Protocol):
    """Reads an HTTP-FLV or WS-FLV stream; ``on_video(tag, receive_ns)`` per
    video tag until it returns True (then the connection is closed)."""

    def __init__(self, path: str, ws: bool, on_video: Callable[[FlvVideo, int], bool] | None) -> None:
        self.path, self.ws, self.on_video = path, ws, on_video
        self.head = bytearray()
        self.in_body = False
        self.wsbuf = bytearray()
        self.flv = FlvReader(max_tag=1 << 22)
        self.bytes = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        if self.ws:
            key = base64.b64encode(os.urandom(16)).decode()
            req = (f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        else:
            req = f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        transport.write(req.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.bytes += len(data)
        if self.on_video is None or self.done.done():
            return  # a discarding player
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.head[:self.head.find(b"\r\n")]).split()
            if len(status) < 2 or status[1] not in (b"200", b"101"):
                self._finish(RuntimeError(f"{self.path}: {bytes(self.head[:end])!r}"))
                return
            self.in_body = True
            data = bytes(self.head[end + 4:])
        if self.ws:
            self._unwrap(data)
        else:
            self.flv.feed(data)
        while (ev := self.flv.next_event()) is not None:
            if isinstance(ev, FlvTag) and ev.tag_type == TAG_VIDEO:
                if self.on_video(parse_video(ev.data), now):
                    self._finish(None)
                    return

    def _unwrap(self, data: bytes) -> None:
        """Server WebSocket frames (unmasked) -> their payloads, into the FLV reader."""
        buf = self.wsbuf
        buf += data
        pos = 0
        while len(buf) - pos >= 2:
            op, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            hdr = 2
            if n == 126:
                hdr, n = 4, int.from_bytes(buf[pos + 2:pos + 4], "big")
            elif n == 127:
                hdr, n = 10, int.from_bytes(buf[pos + 2:pos + 10], "big")
            if len(buf) - pos < hdr + n:
                break
            if op in (0, 2):
                self.flv.feed(memoryview(buf)[pos + hdr:pos + hdr + n])
            pos += hdr + n
        del buf[:pos]

    def _finish(self, exc: BaseException | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"{self.path}: closed"))


def _flv_path(path: str) -> str:
    return f"/streams{path}.flv"


class _Bytes:
    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


# -- the client process's modes ------------------------------------------------------
async def measure(proto: str, port: int, path: str, n: int, seconds: float) -> None:
    """n players; print the latencies (us) of frames received during the window."""
    lat: list[int] = []
    start = time.monotonic_ns() + int(WARMUP * 1e9)
    stop = start + int(seconds * 1e9)

    def record(stamp: tuple[int, int] | None, now: int) -> bool:
        if stamp is not None and now >= start:
            lat.append((now - stamp[0]) // 1000)
        return now >= stop

    def on_video(v: FlvVideo, now: int) -> bool:
        if v.packet_type == 1:
            return record(rc.stamp_of_avcc(v.payload), now)
        return now >= stop

    def on_au(au: AccessUnit, now: int) -> bool:
        return record(rc.stamp_of_avcc(au.data), now)

    loop = asyncio.get_running_loop()
    waits: list[asyncio.Future[None]] = []
    for _ in range(n):
        if proto == "rtsp":
            waits.append(asyncio.ensure_future(rc.play(HOST, port, path, on_au)))
        else:
            _, p = await loop.create_connection(
                lambda: FlvClient(_flv_path(path), proto == "ws-flv", on_video), HOST, port)
            waits.append(p.done)
    await asyncio.wait_for(asyncio.gather(*waits), seconds + WARMUP + 20)
    print(json.dumps({"lat_us": lat}), flush=True)


async def discard(proto: str, port: int, path: str, n: int) -> None:
    """n players that read and drop until SIGTERM; print each one's byte rate."""
    loop = asyncio.get_running_loop()
    counts: list[_Bytes | FlvClient] = []
    tasks: list[asyncio.Task[None]] = []
    for i in range(n):
        if proto == "rtsp":
            got = _Bytes()

            async def one(got: _Bytes = got) -> None:
                conn = await rc.RtspConn.open(HOST, port)
                url = f"rtsp://{HOST}:{port}{path}"
                desc = await conn.request("DESCRIBE", url, "Accept: application/sdp\r\n")
                await conn.request("SETUP", rc._control_url(url, desc.body.decode()),
                                   "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
                await conn.request("PLAY", url)
                while data := await conn.r.read(1 << 18):
                    got.bytes += len(data)

            tasks.append(asyncio.create_task(one()))
            counts.append(got)
        else:
            _, p = await loop.create_connection(
                lambda: FlvClient(_flv_path(path), proto == "ws-flv", None), HOST, port)
            counts.append(p)
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    base = [c.bytes for c in counts]
    t0 = time.monotonic()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    print("ready", flush=True)
    await stopped.wait()
    elapsed = time.monotonic() - t0
    print(json.dumps({"rates": [(c.bytes - b) / elapsed for c, b in zip(counts, base)]}), flush=True)
    for t in tasks:
        t.cancel()


async def join(proto: str, port: int, paths: list[str], count: int) -> None:
    """count late joiners at random moments; print start times (ms)."""
    loop = asyncio.get_running_loop()
    out: list[float] = []
    for i in range(count):
        await asyncio.sleep(random.uniform(0.0, rc.GOP / rc.FPS))
        path = paths[i % len(paths)]
        if proto == "hls":
            t0 = time.monotonic_ns()
            r, w = await asyncio.open_connection(HOST, port)
            w.write(f"GET /streams{path}.m3u8 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            body = await r.read(-1)
            t1 = time.monotonic_ns()
            w.close()
            if not body.startswith(b"HTTP/1.1 200") or b"#EXTINF" not in body:
                raise RuntimeError(f"HLS {path}: {body[:200]!r}")
        elif proto == "rtsp":
            sent: list[int] = []
            got: list[int] = []

            def on_au(au: AccessUnit, now: int, got: list[int] = got) -> bool:
                if au.keyframe:
                    got.append(now)
                return au.keyframe

            await asyncio.wait_for(rc.play(HOST, port, path, on_au, sent), 10)
            t0, t1 = sent[0], got[0]
        else:
            seen_config = [False]

            def on_video(v: FlvVideo, now: int, seen: list[bool] = seen_config) -> bool:
                if v.packet_type == 0:
                    seen[0] = True
                return seen[0] and v.packet_type == 1 and v.keyframe

            t0 = time.monotonic_ns()
            tr, p = await loop.create_connection(
                lambda: FlvClient(_flv_path(path), proto == "ws-flv", on_video), HOST, port)
            await asyncio.wait_for(p.done, 10)
            t1 = time.monotonic_ns()
        out.append((t1 - t0) / 1e6)
    print(json.dumps({"start_ms": out}), flush=True)


# -- orchestration --------------------------------------------------------------------
def client(*args: object, stdout: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen([PY, __file__, "--client", *map(str, args)], cwd=ROOT,
                            stdout=stdout, stdin=subprocess.DEVNULL, text=True)


def result(p: subprocess.Popen[str], timeout: float) -> dict[str, list[float]]:
    out, _ = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"client {p.args!r} failed ({p.returncode})")
    data: dict[str, list[float]] = json.loads(out.strip().splitlines()[-1])
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="latency window per run")
    ap.add_argument("--joins", type=int, default=20, help="late joiners per protocol")
    ap.add_argument("--hls", type=int, default=6, help="HLS first-playlist trials (one new stream each)")
    ap.add_argument("--fanout-window", type=int, default=0, help="the server's coalescing window (ms)")
    ap.add_argument("--ingest-window", type=int, default=0, help="the shards' read window for publishers (ms)")
    ap.add_argument("--unwatched-ingest-window", type=int, default=None,
                    help="the shards' read window for streams nobody plays (ms; default: the server's, 40)")
    ap.add_argument("--client", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client is not None:
        import uvloop

        mode, *rest = args.client
        if mode == "publish":
            uvloop.run(rc.publish_many(HOST, int(rest[0]), rest[1].split(",")))
        elif mode == "measure":
            uvloop.run(measure(rest[0], int(rest[1]), rest[2], int(rest[3]), float(rest[4])))
        elif mode == "discard":
            uvloop.run(discard(rest[0], int(rest[1]), rest[2], int(rest[3])))
        elif mode == "join":
            uvloop.run(join(rest[0], int(rest[1]), rest[2].split(","), int(rest[3])))
        return

    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    port = free_port()
    procs: list[subprocess.Popen[str] | subprocess.Popen[bytes]] = []
    path = "/lat/main"
    rows: list[str] = []
    try:
        procs.append(subprocess.Popen([PY, "-m", "hub", "--listen", f"{HOST}:{port}", "--data", str(work / "data"),
                                       *(["--fanout-window", str(args.fanout_window)] if args.fanout_window else []),
                                       *(["--ingest-window", str(args.ingest_window)] if args.ingest_window else []),
                                       *(["--unwatched-ingest-window", str(args.unwatched_ingest_window)]
                                         if args.unwatched_ingest_window is not None else [])],
                                      cwd=SERVER_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port)
        procs.append(client("publish", port, path, stdout=None))
        wait_http(f"http://{HOST}:{port}/streams{path}.flv")
        time.sleep(1.0)

        lat_rows: list[tuple[str, int, dict[str, list[float]], str]] = []
        for total, measured in ((1, 1), (100, 5)):
            for proto in PROTOS:
                bg = None
                if total > measured:
                    bg = client("discard", proto, port, path, total - measured)
                    procs.append(bg)
                    assert bg.stdout is not None
                    bg.stdout.readline()  # "ready"
                r = result(client("measure", proto, port, path, measured, args.seconds), args.seconds + 60)
                held = ""
                if bg is not None:
                    bg.send_signal(signal.SIGTERM)
                    rates = result(bg, 20)["rates"]
                    ok = sum(1 for x in rates if x >= 0.95 * STREAM_RATE)
                    held = f"{ok}/{len(rates)} held"
                    procs.remove(bg)
                lat_rows.append((proto, total, r, held))
                print(f"  measured {proto} x{total}", file=sys.stderr, flush=True)

        join_rows: list[tuple[str, list[float]]] = []
        for proto in PROTOS:
            join_rows.append((proto, result(client("join", proto, port, path, args.joins), 120)["start_ms"]))
            print(f"  joined {proto}", file=sys.stderr, flush=True)

        hls_paths = [f"/lat/hls{i}" for i in range(args.hls)]
        procs.append(client("publish", port, ",".join(hls_paths), stdout=None))
        for hp in hls_paths:
            wait_http(f"http://{HOST}:{port}/streams{hp}.flv")
        time.sleep(1.2)  # the ring holds a keyframe; nobody has asked for HLS yet
        join_rows.append(("hls", result(client("join", "hls", port, ",".join(hls_paths), args.hls), 120)["start_ms"]))

        unwatched = "server's default" if args.unwatched_ingest_window is None else f"{args.unwatched_ingest_window} ms"
        rows.append(f"latency: fanout_window {args.fanout_window} ms, ingest_window {args.ingest_window} ms, "
                    f"unwatched_ingest_window {unwatched}; {os.cpu_count()} CPUs, all on loopback ({HOST}); "
                    f"server, publisher and players "
                    f"in separate processes on this machine")
        rows.append(f"stream: H.264 {rc.FPS} fps, GOP {rc.GOP / rc.FPS:.0f} s, {rc.I_SIZE // 1000} KB IDR / "
                    f"{rc.P_SIZE // 1000} KB P ({STREAM_RATE * 8 / 1e6:.1f} Mbit/s), pushed over RTSP/TCP")
        rows.append("")
        rows.append(f"push->play latency (ms), {args.seconds:.0f} s window; with 100 players: 5 measured, "
                    f"95 reading in another process")
        rows.append(f"{'protocol':<10}{'players':>8}{'frames':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  note")
        for proto, total, r, held in lat_rows:
            ms = [x / 1000 for x in r["lat_us"]]
            rows.append(f"{proto:<10}{total:>8}{len(ms):>8}{pct(ms, .5):>8.2f}{pct(ms, .95):>8.2f}"
                        f"{pct(ms, .99):>8.2f}{max(ms):>8.2f}  {held}")
        rows.append("")
        rows.append("late joiner: connect (RTSP: DESCRIBE sent) -> first complete keyframe received (ms); "
                    "HLS: first playlist request on a fresh stream -> playlist answered")
        rows.append(f"{'protocol':<10}{'trials':>8}{'p50':>8}{'p95':>8}{'max':>8}")
        for proto, ms in join_rows:
            rows.append(f"{proto:<10}{len(ms):>8}{pct(ms, .5):>8.1f}{pct(ms, .95):>8.1f}{max(ms):>8.1f}")
        rows.append("(HLS answers once the first segment exists; it is cut at the next keyframe, so 0-1 s "
                    "with this GOP, by design)")
        rows.append("")
        rows.append(f"targets: latency p50 <= 5 ms; late joiner first frame < 150 ms. "
                    f"Bench took {time.monotonic() - t_start:.0f} s.")
        print("\n".join(rows), flush=True)
    finally:
        for p in reversed(procs):
            stop(p)


if __name__ == "__main__":
    main()
