"""Shared splitting for `a;b=c;d="e, f"`-style header values.

Several RTSP headers are comma lists of semicolon parameter lists with
optional quoting; splitting respects double quotes so a quoted value may
hold either separator.
"""

from __future__ import annotations

from ...errors import ProtocolError


def split_quoted(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes; pieces are stripped."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if quoted:
        raise ProtocolError(f"unterminated quote in {text[:80]!r}")
    parts.append("".join(current).strip())
    return parts


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def parse_int(text: str, what: str, maximum: int = 2**32 - 1, base: int = 10) -> int:
    """A non-negative integer in ASCII digits, at most `maximum`."""
    digits = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
    if not text or len(text) > 20 or any(c not in digits for c in text):
        raise ProtocolError(f"bad {what} {text[:20]!r}")
    value = int(text, base)
    if value > maximum:
        raise ProtocolError(f"{what} {value} out of range")
    return value


def parse_pair(text: str, what: str, maximum: int) -> tuple[int, int]:
    """`a-b`, or a single `a` meaning `a-(a+1)` (RTP port / channel pairs);
    both within `maximum`, the implied `a+1` too."""
    first, dash, second = text.partition("-")
    a = parse_int(first.strip(), what, maximum)
    b = parse_int(second.strip(), what, maximum) if dash else a + 1
    if b > maximum:
        raise ProtocolError(f"{what} {a} has no {what} after it")
    return a, b
