"""Retention: a path's oldest recordings go first, by age and by size; the newest stays."""

from __future__ import annotations

import os
from pathlib import Path

from hub.placement import shard_of
from hub.shard.record_retention import apply_retention, sweep
from hub.store.recordings import list_recordings
from hub.store.recordings import RecordRule, RecordTable, file_name

T0 = 1_700_000_000.0


def make(folder: Path, ages: list[float], size: int = 100, now: float = T0 + 1000) -> list[str]:
    """Files named a minute apart, oldest first, each written ``age`` seconds before ``now``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, age in enumerate(ages):
        name = file_name(T0 + 60 * i)
        (folder / name).write_bytes(b"x" * size)
        os.utime(folder / name, (now - age, now - age))
        names.append(name)
    (folder / "notes.txt").write_bytes(b"y" * 10_000)  # not a recording: never counted or deleted
    return names


def left(folder: Path) -> list[str]:
    return [f.name for f in list_recordings(folder)]


def test_by_size_oldest_first(tmp_path: Path) -> None:
    names = make(tmp_path, [500, 400, 300, 200, 100])
    assert apply_retention(tmp_path, 0, 250, set(), T0 + 1000) == 3
    assert left(tmp_path) == names[3:] and (tmp_path / "notes.txt").exists()


def test_by_age(tmp_path: Path) -> None:
    names = make(tmp_path, [500, 400, 300, 200, 100])
    assert apply_retention(tmp_path, 350, 0, set(), T0 + 1000) == 2
    assert left(tmp_path) == names[2:]
    assert apply_retention(tmp_path, 0, 0, set(), T0 + 1000) == 0


def test_the_newest_and_files_being_written_stay(tmp_path: Path) -> None:
    names = make(tmp_path, [500, 400, 300])
    assert apply_retention(tmp_path, 1, 1, {str(tmp_path / names[0])}, T0 + 1000) == 1
    assert left(tmp_path) == [names[0], names[2]]


def test_sweep_keeps_to_this_shards_paths_and_their_rules(tmp_path: Path) -> None:
    paths = ["/cams/a", "/cams/b", "/cams/c", "/cams/d", "/other/x"]
    for p in paths:
        make(tmp_path / p.strip("/"), [500, 400])
    rules = RecordTable([RecordRule("/cams/", max_age=450)])
    mine = [p for p in paths if shard_of(p, 2) == 0]
    removed = sweep(tmp_path, rules, 0, 2, set(), T0 + 1000)
    assert removed == len([p for p in mine if p.startswith("/cams/")])
    for p in paths:
        want = 1 if p in mine and p.startswith("/cams/") else 2
        assert len(left(tmp_path / p.strip("/"))) == want, p
