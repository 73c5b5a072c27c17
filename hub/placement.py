"""Canonical stream paths and which shard owns a path.

Every process computes `shard_of` the same way; nobody asks.
"""

from __future__ import annotations

import hashlib
import posixpath


def canonical_path(path: str, *, keep_trailing_slash: bool = False) -> str:
    """Trimmed, lower-cased, cleaned, with a leading `/` (as ipchub does).

    `keep_trailing_slash` is for route patterns, where a trailing `/` marks a
    directory route.
    """
    p = path.strip().lower()
    trailing = keep_trailing_slash and p.endswith("/") and p.strip("/") != ""
    p = posixpath.normpath("/" + p)
    if p.startswith("//"):
        p = "/" + p.lstrip("/")
    if trailing and not p.endswith("/"):
        p += "/"
    return p


def shard_of(path: str, shards: int) -> int:
    """Rendezvous (highest random weight) hash of the canonical path."""
    if shards <= 1:
        return 0
    key = canonical_path(path).encode()
    best, best_w = 0, b""
    for sid in range(shards):
        w = hashlib.blake2b(key, digest_size=8, salt=sid.to_bytes(8, "little")).digest()
        if w > best_w:
            best, best_w = sid, w
    return best
