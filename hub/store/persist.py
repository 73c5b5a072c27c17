"""Atomic JSON files: a reader or a crash sees the old file or the new one,
never a torn one (write a temp file beside it, fsync, rename, fsync the folder).
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from ..errors import HubError


class StoreFileError(HubError):
    """A users or routes file that cannot be read as what it claims to be."""


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: str, obj: Any, mode: int = 0o600) -> None:
    """Replace `path` with `obj` as indented JSON, atomically and durably.

    Files default to 0600: users hold password hashes and routes may hold
    upstream credentials.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def load_json(path: str, default: Any) -> Any:
    """The parsed file, or `default` when it does not exist."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return default
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as e:
        raise StoreFileError(f"{path}: not valid JSON ({e})") from None
