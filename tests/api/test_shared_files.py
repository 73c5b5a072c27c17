"""hub.api.play.shared_files: one buffer per file while anyone holds it."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from hub.api.play.shared_files import SharedFiles


def test_requests_share_one_buffer_while_it_is_held_and_nothing_is_kept_after(tmp_path: Path) -> None:
    f = tmp_path / "1.ts"
    f.write_bytes(b"segment one")
    files = SharedFiles()
    first = files.read(f)
    assert first.tobytes() == b"segment one"
    assert files.read(f) is first and files.reads == 1  # held: shared, not read again
    del first
    gc.collect()
    assert len(files) == 0  # nobody holds it: forgotten
    again = files.read(f)
    assert again.tobytes() == b"segment one" and files.reads == 2


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    f = tmp_path / "part1.m4s"
    f.write_bytes(b"old")
    files = SharedFiles()
    old = files.read(f)
    tmp = tmp_path / "part1.m4s.tmp"
    tmp.write_bytes(b"newer bytes")
    os.replace(tmp, f)  # a new inode, as the segmenters write
    new = files.read(f)
    assert old.tobytes() == b"old" and new.tobytes() == b"newer bytes"
    assert files.read(f) is new


def test_empty_missing_and_unnameable_files(tmp_path: Path) -> None:
    files = SharedFiles()
    (tmp_path / "empty.ts").write_bytes(b"")
    assert files.read(tmp_path / "empty.ts").tobytes() == b""
    with pytest.raises(FileNotFoundError):
        files.read(tmp_path / "2.ts")
    with pytest.raises(ValueError):
        files.read(tmp_path / "a\0b.ts")
    with pytest.raises(OSError):
        files.read(tmp_path / ("x" * 300))
