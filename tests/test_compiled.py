"""The hot path compiled by mypyc (`hub/compiled.py`, `setup.py`): built,
fresh, and giving exactly what its sources give."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

from hub import compiled

ROOT = Path(__file__).resolve().parent.parent

#: Ring entries of a publisher's reads (tests/shard/publish_session_helpers'
#: stream, cut into reads three ways), as one digest per way.
_ENTRIES = """
import hashlib, json, random, sys
from hub import compiled
if sys.argv[1] == "sources":
    compiled.sources_only()
from tests.shard.publish_session_helpers import frame, interleave, publish_reads, rtp_stream
video, audio = rtp_stream(frames=60, seed=3)
wire = interleave(video, audio)
rnd = random.Random(5)
cuts = sorted(rnd.sample(range(1, len(wire)), 300))
ways = [[wire], [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])],
        [frame(0, p) for p in video] + [frame(2, p) for p in audio]]
out = []
for reads in ways:
    h = hashlib.sha256()
    for e in publish_reads(reads):
        h.update(repr((e.seq, e.track, e.flags, e.keyframe, e.pts, e.dts, bytes(e.data))).encode())
    out.append(h.hexdigest())
print(json.dumps({"compiled": compiled.modules(), "digests": out}))
"""


def _entries(mode: str) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", _ENTRIES, mode], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert res.returncode == 0, res.stderr
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_every_hot_module_runs_compiled() -> None:
    """The build compiled them all (`make` does; `HUB_PURE_PYTHON=1` at
    install, or no C compiler, leaves them as sources: then this fails)."""
    assert compiled.modules() == list(compiled.HOT)


def test_no_compiled_module_is_older_than_its_source() -> None:
    """An edit after the build would not run (`make` rebuilds: hub/.hot-built)."""
    assert compiled.stale() == []


def test_the_build_compiles_the_listed_modules() -> None:
    """setup.py builds each listed source, as one group: its shared library
    is named after hub/compiled.py's GROUP, which setup.py read without
    importing the package."""
    group = runpy.run_path(str(ROOT / "hub" / "compiled.py"))["GROUP"]
    package, _, name = group.rpartition(".")
    assert list((ROOT / package.replace(".", "/")).glob(f"{name}__mypyc.*.so")), group
    for module in compiled.HOT:
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_compiled_and_sources_write_the_same_ring_entries() -> None:
    as_built, sources = _entries("installed"), _entries("sources")
    assert as_built["compiled"] == list(compiled.HOT)
    assert sources["compiled"] == []
    assert as_built["digests"] == sources["digests"]
