"""Serial-number arithmetic for RTP sequence numbers and timestamps.

RTP sequence numbers are 16-bit and timestamps 32-bit; both wrap. All
wrap-around arithmetic in the server lives here (RFC 1982 style: the shorter
way round the circle decides order), so no other module compares raw fields.
"""

from __future__ import annotations

__all__ = [
    "SEQ_MOD", "TS_MOD", "seq_diff", "seq_lt", "seq_next", "ts_diff", "ts_lt",
    "SeqUnwrapper", "TimestampUnwrapper",
]

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
_SEQ_HALF = SEQ_MOD >> 1
_TS_HALF = TS_MOD >> 1


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 16-bit sequence numbers."""
    d = (a - b) & 0xFFFF
    return d - SEQ_MOD if d >= _SEQ_HALF else d


def seq_lt(a: int, b: int) -> bool:
    """True if ``a`` comes before ``b`` going the short way round."""
    return seq_diff(a, b) < 0


def seq_next(a: int) -> int:
    """The sequence number after ``a``."""
    return (a + 1) & 0xFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 32-bit RTP timestamps."""
    d = (a - b) & 0xFFFFFFFF
    return d - TS_MOD if d >= _TS_HALF else d


def ts_lt(a: int, b: int) -> bool:
    """True if timestamp ``a`` is before ``b`` going the short way round."""
    return ts_diff(a, b) < 0


class _Unwrapper:
    """Extend an N-bit counter to 64 bits, relative to the last value seen.

    The first value is taken as is (so an extended timestamp equals the wire
    value until the first wrap); later values are placed at the nearest point
    to the previous one, so a late (reordered) packet goes back rather than a
    full cycle forward.
    """

    __slots__ = ("_mask", "_half", "_mod", "_last")

    def __init__(self, bits: int) -> None:
        self._mod = 1 << bits
        self._mask = self._mod - 1
        self._half = self._mod >> 1
        self._last: int | None = None

    @property
    def last(self) -> int | None:
        """Last extended value returned, None before the first."""
        return self._last

    def extend(self, value: int) -> int:
        """Return ``value`` (wire field) as an extended counter."""
        last = self._last
        if last is None:
            ext = value & self._mask
        else:
            d = (value - last) & self._mask
            if d >= self._half:
                d -= self._mod
            ext = last + d
        self._last = ext
        return ext

    def peek(self, value: int) -> int:
        """Like :meth:`extend` but without moving the reference point."""
        last = self._last
        if last is None:
            return value & self._mask
        d = (value - last) & self._mask
        if d >= self._half:
            d -= self._mod
        return last + d

    def reset(self) -> None:
        """Forget the reference point (e.g. after an SSRC change)."""
        self._last = None


class SeqUnwrapper(_Unwrapper):
    """Extend 16-bit RTP sequence numbers."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(16)


class TimestampUnwrapper(_Unwrapper):
    """Extend 32-bit RTP timestamps to 64 bits (the depacketisers' pts)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(32)
