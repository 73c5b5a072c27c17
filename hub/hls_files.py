"""Where HLS files live: the shard writes them, the fronts serve them."""

from __future__ import annotations

from pathlib import Path

HLS_DIR_PREFIX = "ipchub-hls-"


def hls_root(hlspath: str, instance: str) -> Path:
    """An instance's HLS folder: tmpfs by default, `hlspath` if configured."""
    return Path(hlspath or "/dev/shm") / f"{HLS_DIR_PREFIX}{instance}"


def stream_folder(root: Path, path: str) -> Path:
    """A stream's folder under the root; `path` is canonical (no `..`)."""
    return root / path.strip("/")
