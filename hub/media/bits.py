"""Bit-level reading of H.264/H.265 parameter sets (RBSP).

Parameter sets are Exp-Golomb coded behind emulation-prevention bytes. They
are parsed once per stream (or when a publisher changes them), so this reader
favours clarity and strict bounds over speed: an over-read is a malformed
parameter set and raises :class:`hub.errors.ProtocolError`, never IndexError.
"""

from __future__ import annotations

from hub.errors import ProtocolError

__all__ = ["unescape_rbsp", "escape_rbsp", "BitReader"]

_EPB = b"\x00\x00\x03"


def unescape_rbsp(data: bytes | bytearray | memoryview) -> bytes:
    """Remove emulation-prevention bytes: ``00 00 03`` becomes ``00 00``.

    Uses ``bytes.find`` to jump between occurrences so a large NAL with no
    escapes costs one scan, not a Python loop per byte.
    """
    src = bytes(data)
    pos = src.find(_EPB)
    if pos < 0:
        return src
    parts: list[bytes] = []
    start = 0
    while pos >= 0:
        parts.append(src[start:pos + 2])
        start = pos + 3
        pos = src.find(_EPB, start)
    parts.append(src[start:])
    return b"".join(parts)


def escape_rbsp(data: bytes | bytearray | memoryview) -> bytes:
    """Insert emulation-prevention bytes so no start code appears in a NAL.

    After two zero bytes, a byte <= 3 gets a 0x03 inserted before it; so does
    a trailing ``00 00`` (the NAL would otherwise end in zeros that look like
    part of a following start code).
    """
    out = bytearray()
    zeros = 0
    for b in bytes(data):
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    if zeros >= 2:
        out.append(3)
    return bytes(out)


class BitReader:
    """MSB-first reader over an RBSP (already unescaped).

    The whole buffer is held as one big integer so ``read_bits`` is a shift
    and a mask, not a loop over bytes.
    """

    __slots__ = ("_value", "_total", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        raw = bytes(data)
        self._value = int.from_bytes(raw, "big")
        self._total = len(raw) * 8
        self._pos = 0

    @property
    def bits_left(self) -> int:
        """Bits not yet read."""
        return self._total - self._pos

    @property
    def position(self) -> int:
        """Bits read so far."""
        return self._pos

    def read_bits(self, n: int) -> int:
        """Read ``n`` bits as an unsigned integer (n may be 0)."""
        if n < 0:
            raise ValueError("negative bit count")
        end = self._pos + n
        if end > self._total:
            raise ProtocolError(f"bitstream over-read: {n} bits wanted, {self.bits_left} left")
        self._pos = end
        return (self._value >> (self._total - end)) & ((1 << n) - 1)

    def read_bit(self) -> int:
        """Read one bit."""
        return self.read_bits(1)

    def read_flag(self) -> bool:
        """Read one bit as a boolean (the ``u(1)`` flags of the specs)."""
        return self.read_bits(1) == 1

    def skip_bits(self, n: int) -> None:
        """Skip ``n`` bits, with the same bound check as a read."""
        if n < 0:
            raise ValueError("negative bit count")
        if self._pos + n > self._total:
            raise ProtocolError(f"bitstream over-read: skip {n} bits, {self.bits_left} left")
        self._pos += n

    def read_ue(self) -> int:
        """Read an unsigned Exp-Golomb code ``ue(v)``.

        More than 31 leading zeros cannot occur in a valid parameter set
        (values are bounded well below 2**32), so it is rejected instead of
        letting garbage build huge numbers.
        """
        zeros = 0
        while self.read_bits(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ProtocolError("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.read_bits(zeros)

    def read_se(self) -> int:
        """Read a signed Exp-Golomb code ``se(v)``: 1, -1, 2, -2, ..."""
        k = self.read_ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)
