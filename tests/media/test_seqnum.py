"""Wrap-around arithmetic for 16-bit sequence numbers and 32-bit timestamps."""

from __future__ import annotations

from hub.media.seqnum import (SeqUnwrapper, TimestampUnwrapper, seq_diff, seq_lt, seq_next,
                              ts_diff, ts_lt)


def test_seq_diff_across_wrap() -> None:
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(5, 3) == 2
    assert seq_diff(0, 32768) == -32768
    assert seq_lt(65535, 0) and not seq_lt(0, 65535)
    assert seq_next(65535) == 0


def test_ts_diff_across_wrap() -> None:
    assert ts_diff(0, 0xFFFFFFFF) == 1
    assert ts_diff(1000, 0xFFFFFC18) == 2000
    assert ts_diff(0xFFFFFFFF, 0) == -1
    assert ts_lt(0xFFFFFFF0, 0x10)


def test_timestamp_unwrapper_extends_and_handles_reorder() -> None:
    u = TimestampUnwrapper()
    assert u.last is None
    assert u.extend(0xFFFFF000) == 0xFFFFF000
    assert u.extend(0x00000E00) == 0x1_0000_0E00
    assert u.extend(0xFFFFFF00) == 0xFFFFFF00  # late packet from before the wrap
    assert u.peek(0x100) == 0x1_0000_0100
    assert u.last == 0xFFFFFF00
    u.reset()
    assert u.extend(7) == 7


def test_seq_unwrapper() -> None:
    u = SeqUnwrapper()
    assert [u.extend(s) for s in (65534, 65535, 0, 1, 65535, 2)] == [
        65534, 65535, 65536, 65537, 65535, 65538]
