"""Recordings retention: a path's oldest files go first, by age and by total size.

Runs in the shard's file thread (never on the loop): after each file is
closed, for that file's path, and every `record.SWEEP_EVERY` seconds over
every path this shard owns (paths no longer live still age). A path's
newest file is never deleted (it may be the one being written), nor a file
being written. Paths no rule matches keep their files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

from ..placement import shard_of
from ..store.recordings import RecordTable, parse_name

log = logging.getLogger("hub.shard.record")


class RecFile(NamedTuple):
    order: tuple[float, int]
    name: str
    size: int
    mtime: float


def recordings_in(folder: Path) -> list[RecFile]:
    """A path's recording files, oldest first (other files and folders ignored)."""
    out = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for e in entries:
        order = parse_name(e.name)
        if order is None:
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append(RecFile(order, e.name, st.st_size, st.st_mtime))
    out.sort()
    return out


def apply_retention(folder: Path, max_age: float, max_bytes: int, keep: set[str], now: float) -> int:
    """Delete ``folder``'s oldest recordings while one is older than ``max_age``
    seconds (since written) or the folder holds more than ``max_bytes``;
    0 means no limit. Returns how many were deleted."""
    if not max_age and not max_bytes:
        return 0
    files = recordings_in(folder)
    total = sum(f.size for f in files)
    removed = 0
    for f in files[:-1]:
        path = str(folder / f.name)
        if path in keep:
            continue
        if not ((max_age and now - f.mtime > max_age) or (max_bytes and total > max_bytes)):
            break
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.error("retention: cannot delete %s: %s", path, e.strerror)
            continue
        log.info("retention: deleted %s (%d bytes)", path, f.size)
        total -= f.size
        removed += 1
    return removed


def sweep(root: Path, rules: RecordTable, shard_index: int, shard_count: int, keep: set[str],
          now: float) -> int:
    """Retention over every recorded path under ``root`` that this shard owns."""
    removed = 0
    for folder, _dirs, files in os.walk(root):
        if not any(name.endswith(".mp4") for name in files):
            continue
        rel = os.path.relpath(folder, root)
        if rel == ".":
            continue
        path = "/" + rel.replace(os.sep, "/")
        if shard_of(path, shard_count) != shard_index:
            continue
        rule = rules.match(path)
        if rule is not None:
            removed += apply_retention(Path(folder), rule.max_age, rule.max_bytes, keep, now)
    return removed
