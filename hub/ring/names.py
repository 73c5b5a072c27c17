"""Segment names per server instance, and removal of a dead instance's rings.

Names carry the instance so that two servers on one machine never collide and
a supervisor starting up can remove, by prefix, every segment an earlier
crashed run of the same instance left in /dev/shm.
"""

from __future__ import annotations

import os

from hub.ring import layout as L

NAME_PREFIX = "hub-"


def ring_prefix(instance: str) -> str:
    """The prefix shared by all ring names of `instance` ("hub-{instance}-").

    The instance may not contain "-" or "/": with a dash, instance "a"'s
    prefix would also match instance "a-b"'s segments.
    """
    if not instance or "-" in instance or "/" in instance or "\0" in instance:
        raise ValueError(f"bad ring instance name {instance!r}: non-empty, no '-', '/'")
    return f"{NAME_PREFIX}{instance}-"


def ring_name(instance: str, stream_id: int) -> str:
    """The segment name of stream `stream_id` of `instance`: hub-{instance}-{id}."""
    if stream_id < 0:
        raise ValueError(f"bad stream id {stream_id}")
    return f"{ring_prefix(instance)}{stream_id}"


def cleanup_stale(prefix: str) -> list[str]:
    """Unlink every /dev/shm entry whose name starts with `prefix`.

    Returns the names removed. Used at supervisor start (and exit) to remove
    the segments of a dead earlier instance; readers that still map one keep
    their mapping, only the name goes. An empty prefix is refused: it would
    remove every other program's segments too.
    """
    if not prefix or "/" in prefix:
        raise ValueError(f"bad shared-memory prefix {prefix!r}")
    removed: list[str] = []
    try:
        entries = os.listdir(L.SHM_DIR)
    except FileNotFoundError:
        return removed
    for entry in sorted(entries):
        if entry.startswith(prefix):
            try:
                os.unlink(os.path.join(L.SHM_DIR, entry))
            except FileNotFoundError:  # raced with its owner's own unlink
                continue
            removed.append(entry)
    return removed
