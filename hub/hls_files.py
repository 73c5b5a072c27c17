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


#: A stream's fMP4 HLS files (init, parts, segments, playlists) live in this
#: sub-folder of its TS folder. Upper case: canonical stream paths are lower
#: case, so it is never a nested stream's folder.
FMP4_DIR = "FMP4"


def fmp4_folder(root: Path, path: str) -> Path:
    return stream_folder(root, path) / FMP4_DIR
