"""Byte layout of a ring segment, shared by the writer and the readers.

Everything the two sides must agree on lives here, once: the header word
indices, the slot word indices, the sizes and the checks of a segment that
claims to be a ring. Every field is one native, 8-byte aligned word so that
it is stored and loaded in one instruction through `memoryview.cast('Q')`
(a `struct.pack_into` store goes byte by byte and lets readers see torn
values).

Segment::

    0                HEADER_BYTES            data_offset(slots)
    | header words   | slot table            | circular data area      |
                       slots x SLOT_BYTES      data_size bytes

Header words (index into the segment as 'Q'):

    H_MAGIC       b"HUBRING1" as a little-endian word; written last at
                  creation, so a half-built segment never looks valid
    H_VERSION     layout version (LAYOUT_VERSION)
    H_SLOTS       slot count, a power of two
    H_DATA_SIZE   data area size in bytes, a power of two
    H_WRITE_SEQ   seq of the last completed entry; 0 = empty, seqs start at 1
    H_LAST_KEY    seq of the last keyframe entry; 0 = none yet
    H_DESC_VER    description version (the stream's SDP / codec configs)
    H_CLOSED      1 once the writer has closed: end of stream
    H_WRITE_POS   total data bytes the writer has claimed, monotonic; raised
                  *before* the bytes are copied, so a reader that loads it
                  after copying knows whether its bytes may have been hit

Slot words (index into the slot as 'Q'; pts/dts read through a 'q' view):

    S_SEQ, S_POS (absolute write position of the entry's first byte),
    S_LENGTH, S_TRACK, S_FLAGS, S_PTS, S_DTS, S_KEY (1 = keyframe)

An entry is intact after a reader copied it iff its slot still holds the
same seq and ``write_pos - pos <= data_size``.
"""

from __future__ import annotations

from typing import Final

SHM_DIR: Final = "/dev/shm"
"""Where Linux keeps POSIX shared-memory objects (`shm_open` names)."""

MAGIC: Final = int.from_bytes(b"HUBRING1", "little")
LAYOUT_VERSION: Final = 1

WORD: Final = 8

# Header word indices.
H_MAGIC: Final = 0
H_VERSION: Final = 1
H_SLOTS: Final = 2
H_DATA_SIZE: Final = 3
H_WRITE_SEQ: Final = 4
H_LAST_KEY: Final = 5
H_DESC_VER: Final = 6
H_CLOSED: Final = 7
H_WRITE_POS: Final = 8
HEADER_WORDS: Final = 16  # 128 bytes: two cache lines, room to grow
HEADER_BYTES: Final = HEADER_WORDS * WORD

# Slot word indices (relative to the slot's first word).
S_SEQ: Final = 0
S_POS: Final = 1
S_LENGTH: Final = 2
S_TRACK: Final = 3
S_FLAGS: Final = 4
S_PTS: Final = 5
S_DTS: Final = 6
S_KEY: Final = 7
SLOT_WORDS: Final = 8  # one 64-byte cache line per slot
SLOT_SHIFT: Final = 3  # slot index -> first word index
SLOT_BYTES: Final = SLOT_WORDS * WORD

DEFAULT_SLOTS: Final = 1024
DEFAULT_DATA_SIZE: Final = 8 << 20  # ~8 s of a 8 Mbit/s stream, ~30 s at 2
MIN_SLOTS: Final = 2
MIN_DATA_SIZE: Final = 64


class RingFormatError(ValueError):
    """A segment exists under the name but is not a ring this code can read."""


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def check_geometry(slots: int, data_size: int) -> None:
    """Powers of two so positions wrap with a mask instead of a division."""
    if slots < MIN_SLOTS or not is_power_of_two(slots):
        raise ValueError(f"ring slots must be a power of two >= {MIN_SLOTS}, got {slots}")
    if data_size < MIN_DATA_SIZE or not is_power_of_two(data_size):
        raise ValueError(
            f"ring data_size must be a power of two >= {MIN_DATA_SIZE}, got {data_size}"
        )


def data_offset(slots: int) -> int:
    """Byte offset of the data area: header, then the slot table."""
    return HEADER_BYTES + slots * SLOT_BYTES


def segment_size(slots: int, data_size: int) -> int:
    return data_offset(slots) + data_size
