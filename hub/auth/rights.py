"""Push/pull rights patterns, compiled once and matched per request.

A pattern is `;`-separated masks over canonical stream paths:
`*` alone matches everything; a trailing `/*` matches the prefix itself and
anything below it; `+` matches exactly one segment; other segments match
literally (case-insensitively, since stream paths are lower-cased).
Masks are checked cheaply: exact ones by set lookup, `prefix/*` ones by a
prefix test, and only masks with `+` walk segments.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadRequest
from ..placement import canonical_path

MAX_PATTERN_LENGTH = 4096
MAX_MASKS = 256


def _parse_mask(raw: str) -> tuple[str, ...] | None:
    """A mask as its lower-cased segments; None means `*` (everything).

    Raises BadRequest for a mask the reference would silently misread.
    """
    mask = raw.strip()
    if mask == "*":
        return None
    if not mask.isprintable():  # every whitespace character but " " is unprintable too
        raise BadRequest(f"rights mask {raw!r} contains control characters")
    body = mask.lower().strip("/")
    if body == "":
        raise BadRequest(f"rights mask {raw!r} names no path")
    segments = tuple(body.split("/"))
    for i, seg in enumerate(segments):
        if seg == "" or seg.strip() == "":
            raise BadRequest(f"rights mask {raw!r} has an empty segment")
        if seg in (".", ".."):
            raise BadRequest(f"rights mask {raw!r} has a relative segment")
        if seg != seg.strip():
            raise BadRequest(f"rights mask {raw!r} has a segment with surrounding spaces")
        if seg == "*":
            if i != len(segments) - 1:
                raise BadRequest(f"rights mask {raw!r}: '*' is allowed only as the last segment")
        elif "*" in seg or ("+" in seg and seg != "+"):
            raise BadRequest(f"rights mask {raw!r}: a wildcard must be a whole segment")
    return segments


@dataclass(frozen=True)
class RightsPattern:
    """A compiled rights pattern; `match` never raises."""

    source: str
    everything: bool
    exact: frozenset[str]
    prefixes: tuple[str, ...]            # "/a/b" for mask "/a/b/*"
    segmented: tuple[tuple[tuple[str, ...], bool], ...]  # (segments, trailing *)

    @classmethod
    def compile(cls, text: str) -> RightsPattern:
        if not isinstance(text, str):
            raise BadRequest("rights must be a string")
        if len(text) > MAX_PATTERN_LENGTH:
            raise BadRequest(f"rights pattern longer than {MAX_PATTERN_LENGTH} characters")
        everything = False
        exact: set[str] = set()
        prefixes: list[str] = []
        segmented: list[tuple[tuple[str, ...], bool]] = []
        masks = [m for m in text.split(";") if m.strip()]
        if len(masks) > MAX_MASKS:
            raise BadRequest(f"more than {MAX_MASKS} masks in a rights pattern")
        for raw in masks:
            segs = _parse_mask(raw)
            if segs is None:
                everything = True
                continue
            star = segs[-1] == "*"
            fixed = segs[:-1] if star else segs
            if "+" in fixed:
                segmented.append((fixed, star))
            elif star:
                prefixes.append("/" + "/".join(fixed))
            else:
                exact.add("/" + "/".join(fixed))
        return cls(text, everything, frozenset(exact), tuple(prefixes), tuple(segmented))

    @property
    def empty(self) -> bool:
        return not (self.everything or self.exact or self.prefixes or self.segmented)

    def match(self, path: str) -> bool:
        """Does this pattern grant `path`? The path is canonicalised first."""
        if self.everything:
            return True
        if self.empty:
            return False
        p = canonical_path(path)
        if p == "/":
            return False
        if p in self.exact:
            return True
        for pre in self.prefixes:
            if p == pre or (p.startswith(pre) and p[len(pre)] == "/"):
                return True
        if self.segmented:
            parts = p[1:].split("/")
            n = len(parts)
            for segs, star in self.segmented:
                if n < len(segs) or (n > len(segs) and not star):
                    continue
                if all(s == "+" or s == parts[i] for i, s in enumerate(segs)):
                    return True
        return False


EVERYTHING = "*"


def validate_rights(text: str) -> str:
    """Raise BadRequest for a pattern that would not compile; return it trimmed."""
    RightsPattern.compile(text)
    return text.strip()


def effective_rights(text: str, admin: bool) -> str:
    """An admin with empty rights gets `*` (as the reference does)."""
    if admin and not text.strip():
        return EVERYTHING
    return text
