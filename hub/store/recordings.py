"""Recording rules (which paths are recorded, how, how long kept) and the files' names.

A rule's pattern is a stream path (`/cam/door`) or a folder (`/cams/`: every
path below it; `/`: every path); the exact pattern wins, then the longest
folder. Rules come from the configuration (`record`, read-only here) and
from the REST API (`/api/v1/recordings`, kept in `DATA/recordings.json`
by the supervisor, which writes it atomically); an API rule replaces a
configured one with the same pattern.

Recordings of `/a/b` are `RECORDINGS/a/b/YYYY-MM-DD_HH-MM-SS.mp4`, named
by the UTC wall-clock time of their first picture (`-N` added in the rare
case of two in one second).
"""

from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple

from ..errors import BadRequest, NotFound
from ..placement import canonical_path
from .persist import StoreFileError, atomic_write_json, load_json

PATTERN_MAX = 1024
#: Rules in all (config and API): each live stream is matched against them.
MAX_RULES = 1000
FORMATS = ("fmp4",)
SEGMENT_MIN, SEGMENT_MAX = 1.0, 3600.0
DEFAULT_SEGMENT = 60.0
WIRE_VERSION = 1
FILE_NAME = "recordings.json"

_UNITS_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNITS_BYTES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.I)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.I)
_NAME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)_(\d\d)-(\d\d)-(\d\d)(?:-(\d{1,4}))?\.mp4$")


def parse_seconds(key: str, v: object, lo: float, hi: float) -> float:
    """A number of seconds, or a string like ``90s``, ``15m``, ``12h``, ``7d``, ``2w``."""
    if isinstance(v, bool) or v is None:
        raise BadRequest(f"{key}: expected seconds, got {v!r}")
    if isinstance(v, (int, float)):
        n = float(v)
    else:
        m = _DURATION.match(str(v))
        if not m:
            raise BadRequest(f"{key}: expected seconds or a duration like 12h, got {v!r}")
        n = float(m.group(1)) * _UNITS_SECONDS[(m.group(2) or "s").lower()]
    if not lo <= n <= hi:  # also NaN
        raise BadRequest(f"{key}: {n:g} s is out of range {lo:g}..{hi:g}")
    return n


def parse_bytes(key: str, v: object) -> int:
    """A number of bytes, or a string like ``500M``, ``10GB``, ``1.5GiB`` (multiples of 1024)."""
    if isinstance(v, bool) or v is None:
        raise BadRequest(f"{key}: expected bytes, got {v!r}")
    if isinstance(v, int):
        n = v
    elif isinstance(v, float):
        if not v.is_integer():
            raise BadRequest(f"{key}: expected a whole number of bytes, got {v!r}")
        n = int(v)
    else:
        m = _SIZE.match(str(v))
        if not m:
            raise BadRequest(f"{key}: expected bytes or a size like 10GB, got {v!r}")
        n = int(float(m.group(1)) * _UNITS_BYTES[m.group(2).lower()])
    if not 0 <= n < 1 << 60:
        raise BadRequest(f"{key}: {n} bytes is out of range")
    return n


@dataclass(frozen=True)
class RecordRule:
    pattern: str
    format: str = "fmp4"
    segment: float = DEFAULT_SEGMENT  # seconds per file (cut at the next keyframe)
    max_age: float = 0.0  # seconds a file is kept after it was written; 0: no limit
    max_bytes: int = 0  # per stream path, oldest files deleted first; 0: no limit
    source: str = "api"  # "config" or "api"

    @property
    def is_folder(self) -> bool:
        return self.pattern.endswith("/")

    def public_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "format": self.format, "segment": self.segment,
                "retention": {"max_age": self.max_age, "max_bytes": self.max_bytes},
                "source": self.source}


def validate_pattern(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("recording pattern must not be empty")
    if len(raw) > PATTERN_MAX:
        raise BadRequest(f"recording pattern longer than {PATTERN_MAX} characters")
    if not raw.isprintable():
        raise BadRequest("recording pattern may not contain control characters")
    return canonical_path(raw, keep_trailing_slash=True)


def rule_from_obj(obj: object, source: str = "api") -> RecordRule:
    """Validate one rule object (API body, config entry or file entry)."""
    if not isinstance(obj, Mapping):
        raise BadRequest("a recording rule must be a JSON object")
    unknown = set(obj) - {"pattern", "format", "segment", "retention", "source"}
    if unknown:
        raise BadRequest(f"recording rule: unknown key {sorted(unknown)[0]!r}")
    pattern = validate_pattern(obj.get("pattern"))
    fmt = obj.get("format", "fmp4")
    if fmt not in FORMATS:
        raise BadRequest(f"recording format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    segment = parse_seconds("segment", obj.get("segment", DEFAULT_SEGMENT), SEGMENT_MIN, SEGMENT_MAX)
    retention = obj.get("retention")
    if retention is None:
        retention = {}
    if not isinstance(retention, Mapping):
        raise BadRequest("retention must be an object")
    unknown = set(retention) - {"max_age", "max_bytes"}
    if unknown:
        raise BadRequest(f"retention: unknown key {sorted(unknown)[0]!r}")
    max_age = parse_seconds("retention.max_age", retention.get("max_age", 0), 0.0, 100 * 365 * 86400.0)
    max_bytes = parse_bytes("retention.max_bytes", retention.get("max_bytes", 0))
    return RecordRule(pattern, str(fmt), segment, max_age, max_bytes, source)


def rules_from_config(v: object) -> list[dict[str, Any]]:
    """Config ``record``: each rule checked as the API checks one; BadRequest names it."""
    if not isinstance(v, list):
        raise BadRequest("record: expected a list of rules")
    if len(v) > MAX_RULES:
        raise BadRequest(f"record: at most {MAX_RULES} rules")
    out = []
    for i, obj in enumerate(v):
        try:
            rule = rule_from_obj(obj, "config").public_dict()
        except BadRequest as e:
            raise BadRequest(f"record[{i}]: {e.message}") from None
        del rule["source"]
        out.append(rule)
    return out


class RecordTable:
    """Rules by canonical pattern; a match costs one lookup per path level."""

    def __init__(self, rules: Iterable[RecordRule] = ()) -> None:
        self._rules: dict[str, RecordRule] = {}
        self.skipped: list[str] = []
        for r in rules:
            self._rules[r.pattern] = r

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[RecordRule]:
        return iter(sorted(self._rules.values(), key=lambda r: r.pattern))

    def get(self, pattern: str) -> RecordRule | None:
        return self._rules.get(validate_pattern(pattern))

    def match(self, path: str) -> RecordRule | None:
        """The rule for a stream path: its own pattern, else the longest folder above it."""
        p = canonical_path(path)
        rule = self._rules.get(p)
        if rule is not None:
            return rule
        i = len(p)
        while i > 0:
            i = p.rfind("/", 0, i)
            rule = self._rules.get(p[:i + 1])
            if rule is not None:
                return rule
        return None

    # -- changes (the supervisor's) ------------------------------------------------------
    def upsert(self, obj: object) -> RecordRule:
        rule = rule_from_obj(obj, "api")
        if rule.pattern not in self._rules and len(self._rules) >= MAX_RULES:
            raise BadRequest(f"at most {MAX_RULES} recording rules")
        self._rules[rule.pattern] = rule
        return rule

    def delete(self, pattern: str) -> bool:
        """An API rule; a configured one stays (change the configuration)."""
        p = validate_pattern(pattern)
        rule = self._rules.get(p)
        if rule is None:
            return False
        if rule.source == "config":
            raise BadRequest(f"recording rule {p!r} comes from the configuration file")
        del self._rules[p]
        return True

    # -- files ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str, configured: Iterable[RecordRule] = ()) -> RecordTable:
        """The configured rules, then the file's (missing file: none)."""
        data = load_json(path, [])
        if not isinstance(data, list):
            raise StoreFileError(f"{path}: must be a JSON array of rules")
        return cls.from_file_list(data, configured)

    @classmethod
    def from_file_list(cls, data: list[Any], configured: Iterable[RecordRule] = ()) -> RecordTable:
        """The configured rules, then the API's as the file (or a cluster's Redis) holds them."""
        table = cls(configured)
        for i, obj in enumerate(data):
            try:
                rule = rule_from_obj(obj, "api")
            except BadRequest as e:
                table.skipped.append(f"rule #{i}: {e.message}")
                continue
            table._rules[rule.pattern] = rule
        return table

    def to_file_list(self) -> list[dict[str, Any]]:
        """The API's rules (the configured ones belong to each node's configuration)."""
        rules = [r.public_dict() for r in self if r.source == "api"]
        for r in rules:
            del r["source"]
        return rules

    def save(self, path: str) -> None:
        atomic_write_json(path, self.to_file_list(), mode=0o600)

    def page(self) -> list[dict[str, Any]]:
        return [r.public_dict() for r in self]

    def get_public(self, pattern: str) -> dict[str, Any]:
        rule = self.get(pattern)
        if rule is None:
            raise NotFound(f"recording rule {validate_pattern(pattern)!r} not found")
        return rule.public_dict()

    # -- broadcast -----------------------------------------------------------------------
    def to_wire(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "rules": [[r.pattern, r.format, r.segment, r.max_age, r.max_bytes, r.source]
                                             for r in self._rules.values()]}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> RecordTable:
        if wire.get("v") != WIRE_VERSION:
            raise BadRequest(f"recording rules wire version {wire.get('v')!r} not understood")
        return cls(RecordRule(str(p), str(f), float(s), float(a), int(b), str(src))
                   for p, f, s, a, b, src in wire["rules"])


# -- files ---------------------------------------------------------------------------------


def path_folder(root: Path, path: str) -> Path:
    """Where a stream's recordings are (``path`` canonical: no ``..``)."""
    return root / canonical_path(path).strip("/")


def file_name(wall: float, n: int = 0) -> str:
    """``YYYY-MM-DD_HH-MM-SS.mp4`` (UTC), ``-N`` before the suffix when ``n``."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.gmtime(int(wall)))
    return f"{stamp}-{n}.mp4" if n else f"{stamp}.mp4"


def parse_name(name: str) -> tuple[float, int] | None:
    """(wall-clock second, N) a recording's name gives, in the order the files
    were made; None for any other name."""
    m = _NAME.match(name)
    if not m:
        return None
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
        t = datetime(y, mo, d, h, mi, sec, tzinfo=timezone.utc)
    except ValueError:
        return None
    return t.timestamp(), int(m.group(7) or 0)


class RecordingFile(NamedTuple):
    """One recording file in a path's folder."""
    name: str
    order: tuple[float, int]  # parse_name's (second, N): the order files were made
    size: int
    mtime_ns: int


def list_recordings(folder: Path) -> list[RecordingFile]:
    """A path's recording files, oldest first; other files and folders are
    left out (blocking: call it in a thread from a loop). A folder name no
    file system takes (a NUL, a part over 255 bytes: a URL can carry both)
    holds none."""
    out = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return []
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return []
        raise
    for e in entries:
        order = parse_name(e.name)
        if order is None or not e.is_file(follow_symlinks=False):
            continue
        try:
            st = e.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append(RecordingFile(e.name, order, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda f: f.order)
    return out
