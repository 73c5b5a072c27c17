"""Shared-memory rings: one per stream, one writer process, many readers.

No locks and no asyncio: see `layout` for the segment format, `writer` for
the publishing order, `reader` for the copy-then-validate read and laps.
"""

from __future__ import annotations

from hub.ring.layout import DEFAULT_DATA_SIZE, DEFAULT_SLOTS, RingFormatError
from hub.ring.names import cleanup_stale, ring_name, ring_prefix
from hub.ring.reader import RingEntry, RingReader
from hub.ring.writer import RingWriter

__all__ = [
    "DEFAULT_DATA_SIZE",
    "DEFAULT_SLOTS",
    "RingEntry",
    "RingFormatError",
    "RingReader",
    "RingWriter",
    "cleanup_stale",
    "ring_name",
    "ring_prefix",
]
