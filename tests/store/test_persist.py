from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hub.store.persist import StoreFileError, atomic_write_json, load_json


def test_writes_exact_content_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    atomic_write_json(str(path), [{"name": "admin", "n": 1, "ok": True, "ü": "中"}])
    assert path.read_bytes() == (
        '[\n  {\n    "name": "admin",\n    "n": 1,\n    "ok": true,\n    "ü": "中"\n  }\n]\n'
    ).encode("utf-8")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["users.json"]


def test_replace_leaves_no_temp_files_and_keeps_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "r.json")
    for i in range(5):
        atomic_write_json(path, {"i": i})
    assert load_json(path, None) == {"i": 4}
    assert os.listdir(tmp_path) == ["r.json"]
    umask = os.umask(0o022)
    try:
        atomic_write_json(str(tmp_path / "pub.json"), [], mode=0o644)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "pub.json").st_mode) == 0o644


def test_crash_before_rename_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "users.json"
    atomic_write_json(str(path), ["old"])
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        assert Path(src).read_bytes() == b'[\n  "new"\n]\n'   # fully written first
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        atomic_write_json(str(path), ["new"])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["users.json"]


def test_unserialisable_object_leaves_old_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    atomic_write_json(str(path), [1])
    with pytest.raises(TypeError):
        atomic_write_json(str(path), [object()])
    assert path.read_bytes() == b"[\n  1\n]\n"
    assert os.listdir(tmp_path) == ["x.json"]


def test_creates_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "f.json"
    atomic_write_json(str(path), {})
    assert path.read_bytes() == b"{}\n"


def test_load_json(tmp_path: Path) -> None:
    assert load_json(str(tmp_path / "missing.json"), []) == []
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf[1]")
    assert load_json(str(bom), None) == [1]
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[{"name":')
    with pytest.raises(StoreFileError, match="bad.json"):
        load_json(str(bad), [])
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(StoreFileError):
        load_json(str(binary), [])
