"""Rings across real processes: concurrent readers never see a torn entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.ring import RingWriter, cleanup_stale

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).with_name("ring_worker.py"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def name() -> Iterator[str]:
    n = f"hubproc-{uuid.uuid4().hex[:12]}"
    yield n
    cleanup_stale(n)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def result(p: subprocess.Popen[str], timeout: float = 20.0) -> dict[str, int]:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_concurrent_readers_in_other_processes_see_no_torn_entry(name: str) -> None:
    writer = spawn("writer", name, "2.5", "1")
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        readers = [spawn("reader", name, str(seed)) for seed in (2, 3)]
        w = result(writer)
        rs = [result(r) for r in readers]
    finally:
        for p in [writer, *locals().get("readers", [])]:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not os.path.exists(f"/dev/shm/{name}")  # the creator unlinked on close
    assert w["entries"] > 1000
    for r in rs:
        assert r["corrupt"] == 0, r
        assert r["disorder"] == 0, r
        assert r["entries"] > 100, r
        assert r["after_lap"] <= r["lapped"] <= r["after_lap"] + 1, r
        assert r["entries"] <= w["entries"]


def test_reader_process_exit_does_not_unlink(name: str) -> None:
    wr = RingWriter.create(name, slots=4, data_size=64)
    try:
        wr.write(b"abc", track=0, keyframe=True, pts=0, dts=0)
        p = spawn("attach", name)
        assert result(p) == {"entries": 1}
        assert os.path.exists(f"/dev/shm/{name}")
        wr.write(b"def", track=0, keyframe=True, pts=0, dts=0)  # still the live segment
    finally:
        wr.close()
    assert not os.path.exists(f"/dev/shm/{name}")
