"""Child processes for the cross-process ring tests (run as a script).

    ring_worker.py writer NAME SECONDS SEED   create, print "ready", write, close
    ring_worker.py reader NAME SEED            read until the writer closed
    ring_worker.py attach NAME                 attach, read, exit without close

Each prints one JSON line of counts. Entry seq s carries a payload that is
checkable on its own: seq (8 bytes LE), length (8 bytes LE), then the seq's
bytes repeated; pts = 3s, dts = -s, track = s % 4, flags = s % 256,
keyframe = s % KEY_EVERY == 1.
"""

from __future__ import annotations

import json
import random
import sys
import time

from hub.ring import RingEntry, RingReader, RingWriter

SLOTS = 128
DATA = 1 << 20
KEY_EVERY = 20


def body(seq: int, n: int) -> bytes:
    return (seq.to_bytes(8, "little") * (n // 8 + 1))[:n]


def entry_size(rng: random.Random, tiny: bool) -> int:
    if tiny:  # bursts of small entries lap the slot table before the data area
        return rng.randint(16, 64)
    r = rng.random()
    if r < 0.80:
        return rng.randint(16, 4096)
    if r < 0.99:
        return rng.randint(4096, 64 << 10)
    return rng.randint(DATA // 2, DATA)  # laps every reader


def run_writer(name: str, seconds: float, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    wr = RingWriter.create(name, slots=SLOTS, data_size=DATA)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        tiny = rng.random() < 0.5
        for _ in range(50):
            seq = wr.write_seq + 1
            n = entry_size(rng, tiny)
            head = seq.to_bytes(8, "little") + n.to_bytes(8, "little")
            wr.write([head, body(seq, n - 16)], track=seq % 4, keyframe=seq % KEY_EVERY == 1,
                     pts=3 * seq, dts=-seq, flags=seq % 256)
            total += n
        if rng.random() < 0.05:
            time.sleep(0.001)  # let readers catch up now and then
    entries = wr.write_seq
    wr.close()
    return {"entries": entries, "bytes": total}


def valid(e: RingEntry) -> bool:
    s, d = e.seq, e.data
    n = len(d)
    return (
        n >= 16
        and d[:8] == s.to_bytes(8, "little")
        and int.from_bytes(d[8:16], "little") == n
        and d[16:] == body(s, n - 16)
        and (e.pts, e.dts, e.track, e.flags) == (3 * s, -s, s % 4, s % 256)
        and e.keyframe == (s % KEY_EVERY == 1)
    )


def run_reader(name: str, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    rd = RingReader.attach(name)
    entries = nbytes = corrupt = disorder = after_lap = 0
    last = rd.next_seq - 1
    while True:
        got = rd.read()
        if not got:
            if rd.closed:
                got = rd.read()
                if not got:
                    break
            else:
                time.sleep(0.0002)
                continue
        for e in got:
            entries += 1
            nbytes += len(e.data)
            corrupt += not valid(e)
            after_lap += e.after_lap
            if e.seq <= last or (e.seq != last + 1 and not e.after_lap):
                disorder += 1
            last = e.seq
        if rng.random() < 0.02:
            time.sleep(rng.random() * 0.003)  # a slow moment: get lapped
    lapped = rd.lapped
    rd.close()
    return {"entries": entries, "bytes": nbytes, "corrupt": corrupt, "disorder": disorder,
            "lapped": lapped, "after_lap": after_lap}


def run_attach(name: str) -> dict[str, int]:
    rd = RingReader.attach(name)
    return {"entries": len(rd.read())}  # exits without close, like a crash


def main(argv: list[str]) -> None:
    cmd, name = argv[0], argv[1]
    if cmd == "writer":
        out = run_writer(name, float(argv[2]), int(argv[3]))
    elif cmd == "reader":
        out = run_reader(name, int(argv[2]))
    else:
        out = run_attach(name)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
