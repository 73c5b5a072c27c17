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

from ..placement import shard_of
from ..store.recordings import RecordTable, list_recordings

log = logging.getLogger("hub.shard.record")


def apply_retention(folder: Path, max_age: float, max_bytes: int, keep: set[str], now: float) -> int:
    """Delete ``folder``'s oldest recordings while one is older than ``max_age``
    seconds (since written) or the folder holds more than ``max_bytes``;
    0 means no limit. Returns how many were deleted."""
    if not max_age and not max_bytes:
        return 0
    files = list_recordings(folder)
    total = sum(f.size for f in files)
    removed = 0
    for f in files[:-1]:
        path = str(folder / f.name)
        if path in keep:
            continue
        if not ((max_age and now - f.mtime_ns / 1e9 > max_age) or (max_bytes and total > max_bytes)):
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
