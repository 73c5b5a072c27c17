"""Ring throughput: writer alone, reader alone, and readers in other processes.

    python bench/ring.py [--seconds 1.5]

Prints entries/s and MB/s (best of three) for a writer alone (1 KB and 16 KB entries, one
buffer and a header + payload pair), a reader alone on a full ring, and a
writer at full speed with 1, 2 and 4 reader processes reading concurrently
(total reader MB/s and laps). A full-speed writer is far past any real
stream's rate, so readers there are lapped on purpose: the figures show the
cost of copying out, not a real stream's fan-out.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import uuid
from multiprocessing.synchronize import Event

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hub.ring import RingReader, RingWriter  # noqa: E402

SLOTS = 1024
DATA = 8 << 20
MB = 1e6


def bench_writer(size: int, seconds: float, split: bool) -> tuple[float, float]:
    name = f"hubbench-{uuid.uuid4().hex[:8]}"
    payload = bytes(size)
    head, body = payload[:16], payload[16:]
    data: bytes | list[bytes] = [head, body] if split else payload
    with RingWriter.create(name, slots=SLOTS, data_size=DATA) as wr:
        write = wr.write
        n = 0
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while time.perf_counter() < deadline:
            for _ in range(1000):
                write(data, track=0, keyframe=False, pts=n, dts=n)
            n += 1000
        dt = time.perf_counter() - t0
    return n / dt, n * size / dt / MB


def bench_reader_alone(size: int, seconds: float) -> tuple[float, float]:
    name = f"hubbench-{uuid.uuid4().hex[:8]}"
    count = min(SLOTS, DATA // size)
    with RingWriter.create(name, slots=SLOTS, data_size=DATA) as wr:
        for i in range(count):
            wr.write(bytes(size), track=0, keyframe=i == 0, pts=i, dts=i)
        with RingReader.attach(name) as rd:
            n = 0
            t0 = time.perf_counter()
            deadline = t0 + seconds
            while time.perf_counter() < deadline:
                rd.seek_last_keyframe()
                n += len(rd.read(max_entries=count))
            dt = time.perf_counter() - t0
    return n / dt, n * size / dt / MB


def reader_proc(name: str, ready: Event, results: mp.Queue[tuple[int, int, int]]) -> None:
    rd = RingReader.attach(name)
    ready.set()
    entries = nbytes = 0
    while True:
        got = rd.read()
        if not got:
            if rd.closed and not (got := rd.read()):
                break
            if not got:
                time.sleep(0)
                continue
        entries += len(got)
        for e in got:
            nbytes += len(e.data)
    results.put((entries, nbytes, rd.lapped))
    rd.close()


def bench_readers(readers: int, size: int, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    name = f"hubbench-{uuid.uuid4().hex[:8]}"
    wr = RingWriter.create(name, slots=SLOTS, data_size=DATA)
    results: mp.Queue[tuple[int, int, int]] = ctx.Queue()
    events = [ctx.Event() for _ in range(readers)]
    procs = [ctx.Process(target=reader_proc, args=(name, ev, results)) for ev in events]
    for p in procs:
        p.start()
    for ev in events:
        ev.wait(30)
    payload = bytes(size)
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            wr.write(payload, track=0, keyframe=n % 50 == 0, pts=n, dts=n)
            n += 1
    dt = time.perf_counter() - t0
    wr.close()
    got = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    return {
        "writer_eps": n / dt,
        "writer_mbs": n * size / dt / MB,
        "reader_eps": sum(g[0] for g in got) / dt,
        "reader_mbs": sum(g[1] for g in got) / dt / MB,
        "laps": sum(g[2] for g in got),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5)
    args = ap.parse_args()
    secs = args.seconds
    print(f"ring: {SLOTS} slots, {DATA >> 20} MiB data; {os.cpu_count()} CPUs; "
          f"python {sys.version.split()[0]}")
    for size in (1024, 16384):
        for split in (False, True):
            eps, mbs = max(bench_writer(size, secs / 3, split) for _ in range(3))
            how = "header+payload" if split else "one buffer"
            print(f"writer alone   {size // 1024:>3} KB {how:<15} {eps:>10,.0f} entries/s {mbs:>8,.0f} MB/s")
    for size in (1024, 16384):
        eps, mbs = max(bench_reader_alone(size, secs / 3) for _ in range(3))
        print(f"reader alone   {size // 1024:>3} KB {'':<15} {eps:>10,.0f} entries/s {mbs:>8,.0f} MB/s")
    for size in (1024, 16384):
        for readers in (1, 2, 4):
            r = bench_readers(readers, size, secs)
            print(f"{readers} reader procs {size // 1024:>3} KB: writer {r['writer_eps']:>9,.0f} e/s "
                  f"{r['writer_mbs']:>6,.0f} MB/s | readers total {r['reader_eps']:>9,.0f} e/s "
                  f"{r['reader_mbs']:>6,.0f} MB/s, laps {r['laps']:,.0f}")


if __name__ == "__main__":
    main()
