"""Copy-on-write: what each forked process of an idle tree wrote on the pages
it shares with the zygote, and so holds its own copy of.

    python bench/cow.py [--shards 2] [--fronts 2] [--settle 5]

Needs root (the page frame numbers in /proc/PID/pagemap). An idle tree is
started; for every process but the zygote, each page of a writable mapping
the zygote also maps is compared: a page whose frame differs from the
zygote's is a copy (that process or the zygote wrote on it since the fork;
the supervisor, which forked the zygote, is compared the same way). For
each copy it prints how many 8-byte words differ from the zygote's page:

- **0 words**: written and back as it was (a reference count up and down
  again). The kernel's same-page merging can share such a page again
  (`memory_merge`, hub/ksm.py); nothing in the process can.
- **1-3 words**: mostly reference counts that stayed changed (an object
  kept by something new). The words that look like a count (a small
  change to a small value followed by a type pointer) are counted by the
  type's name, read from the zygote's memory: what the process touched.
- **20+ words**: the allocator filling holes of the shared heap with new
  objects, or data rewritten.

Python 3.11 writes an object's reference count whenever it is used, so a
child copies every page holding an object its code used: code objects,
functions, interned names, constants. This is the measurement behind
docs/architecture.md's "why the children's memory is what it is".
"""

from __future__ import annotations

import argparse
import collections
import os
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HubTree  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
_WORD = struct.Struct("<q")
_PFN_MASK = (1 << 55) - 1


def writable_maps(pid: int) -> dict[tuple[int, int], str]:
    """(start, end) -> name of each writable mapping."""
    out: dict[tuple[int, int], str] = {}
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if "w" not in parts[1]:
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out[(lo, hi)] = parts[5] if len(parts) > 5 else "[anon]"
    return out


def frames(pid: int, lo: int, hi: int) -> list[int | None]:
    """The page frame of each page in [lo, hi), None where none is present."""
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(lo // PAGE * 8)
        data = f.read((hi - lo) // PAGE * 8)
    out: list[int | None] = []
    for (e,) in struct.iter_unpack("<Q", data):
        out.append(e & _PFN_MASK if e >> 63 else None)
    return out


class Memory:
    """Reads of one process's memory."""

    def __init__(self, pid: int) -> None:
        self.f: BinaryIO = open(f"/proc/{pid}/mem", "rb", buffering=0)
        self._types: dict[int, str] = {}

    def read(self, addr: int, n: int) -> bytes:
        self.f.seek(addr)
        return self.f.read(n)

    def type_name(self, addr: int) -> str:
        """tp_name of the type object at `addr` (offset 24 in PyTypeObject)."""
        if addr not in self._types:
            try:
                (name_ptr,) = struct.unpack("<Q", self.read(addr + 24, 8))
                text = self.read(name_ptr, 80).split(b"\0")[0].decode("ascii")
                name = text if text and text.isprintable() else "?"
            except (OSError, ValueError, OverflowError, struct.error):
                name = "?"
            self._types[addr] = name
        return self._types[addr]


@dataclass
class Copies:
    """One process's copies of the zygote's pages."""

    pages: int = 0
    by_mapping: collections.Counter[str] = field(default_factory=collections.Counter)
    #: pages by how many words differ: "0", "1-3", "4-19", "20+"
    words: collections.Counter[str] = field(default_factory=collections.Counter)
    #: pages with a count-like change on an object of that type
    touched: collections.Counter[str] = field(default_factory=collections.Counter)


def compare(zygote: int, pid: int) -> Copies:
    """The pages `pid` holds copies of, against the zygote's."""
    zmem, pmem = Memory(zygote), Memory(pid)
    zmaps = writable_maps(zygote)
    r = Copies()
    for (lo, hi), name in writable_maps(pid).items():
        if name == "[heap]":  # the heap may have grown since the fork
            common = [k for k, n in zmaps.items() if n == "[heap]" and k[0] == lo]
            if not common:
                continue
            hi = min(hi, common[0][1])
        elif (lo, hi) not in zmaps:
            continue
        for i, (zf, pf) in enumerate(zip(frames(zygote, lo, hi), frames(pid, lo, hi))):
            if zf is None or pf is None or zf == pf:
                continue
            addr = lo + i * PAGE
            try:
                zp, pp = zmem.read(addr, PAGE), pmem.read(addr, PAGE)
            except OSError:
                continue
            r.pages += 1
            r.by_mapping[Path(name).name if name.startswith("/") else name] += 1
            differ = 0
            types: set[str] = set()
            for w in range(0, PAGE, 8):
                if zp[w:w + 8] == pp[w:w + 8]:
                    continue
                differ += 1
                (old,) = _WORD.unpack_from(zp, w)
                (new,) = _WORD.unpack_from(pp, w)
                if 0 < abs(new - old) < 10_000 and 0 < old < 1 << 32 and w + 16 <= PAGE:
                    (tp,) = struct.unpack_from("<Q", zp, w + 8)
                    if PAGE < tp < 1 << 47:  # a user-space address
                        types.add(zmem.type_name(tp))
            bucket = "0" if differ == 0 else "1-3" if differ <= 3 else "4-19" if differ < 20 else "20+"
            r.words[bucket] += 1
            for t in types:
                r.touched[t] += 1
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--fronts", type=int, default=2)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds idle before comparing")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: page frame numbers (/proc/PID/pagemap)")
    with tempfile.TemporaryDirectory(prefix="hub-cow-") as work:
        tree = HubTree(Path(work), a.shards, a.fronts)
        try:
            tree.wait_ready()
            time.sleep(a.settle)
            procs = tree.processes()
            zygote = [p.pid for name, p in procs if name.startswith("zygote")]
            if not zygote:
                raise SystemExit("no zygote (HUB_ZYGOTE=0?)")
            print(f"idle tree, {a.shards} shards + {a.fronts} fronts; pages of {PAGE // 1024} KiB, "
                  f"each process against the zygote (pid {zygote[0]})\n")
            print(f"{'process':12} {'copies':>7} {'MiB':>6}  {'0 words':>8} {'1-3':>6} {'4-19':>6} {'20+':>6}  "
                  "most pages touched by type (pages)")
            for name, p in procs:
                if p.pid == zygote[0]:
                    continue
                r = compare(zygote[0], p.pid)
                n = r.pages
                share = "  ".join(f"{r.words[k] / max(n, 1):6.0%}" for k in ("0", "1-3", "4-19", "20+"))
                top = ", ".join(f"{k} {v}" for k, v in r.touched.most_common(6))
                print(f"{name:12} {n:7} {n * PAGE / 2**20:6.1f}  {share}  {top}")
                print(f"{'':12} by mapping: " + ", ".join(f"{k} {v}" for k, v in r.by_mapping.most_common(4)))
        finally:
            tree.stop()


if __name__ == "__main__":
    main()
