"""The Range header (RFC 2326 §12.29): `npt=0.000-`, `npt=now-`,
`npt=10-20.5`, `clock=19961108T142300Z-`, `smpte=...`, optional `;time=`.

Start and end are kept as written so they round-trip; `start_seconds` /
`end_seconds` read npt values (plain seconds or h:mm:ss.frac).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import ProtocolError

UNITS = ("npt", "clock", "smpte", "smpte-30-drop", "smpte-25")
_NPT_SEC = re.compile(r"[0-9]{1,12}(\.[0-9]{0,9})?\Z")
_NPT_HHMMSS = re.compile(r"([0-9]{1,9}):([0-5]?[0-9]):([0-5]?[0-9](\.[0-9]{0,9})?)\Z")
_VALUE = re.compile(r"[0-9A-Za-z:.,]*\Z")


@dataclass
class RangeHeader:
    unit: str = "npt"
    start: str = "0.000"
    end: str | None = None
    time: str | None = None

    @classmethod
    def npt(cls, start: float, end: float | None = None) -> RangeHeader:
        return cls("npt", f"{start:.3f}", None if end is None else f"{end:.3f}")

    @classmethod
    def parse(cls, text: str) -> RangeHeader:
        spec, _, rest = text.strip().partition(";")
        unit, eq, value = spec.partition("=")
        unit = unit.strip().lower()
        if not eq or unit not in UNITS:
            raise ProtocolError(f"unsupported Range {text[:60]!r}")
        start, dash, end = value.strip().partition("-")
        if not dash or not _VALUE.match(start) or not _VALUE.match(end) or not (start or end):
            raise ProtocolError(f"malformed Range {text[:60]!r}")
        time: str | None = None
        name, _, t = rest.partition("=")
        if name.strip().lower() == "time":
            time = t.strip()
        header = cls(unit, start, end or None, time)
        if unit == "npt":
            _ = (header.start_seconds, header.end_seconds)  # validate
        return header

    @property
    def start_seconds(self) -> float | None:
        """npt start in seconds; None for `now` or a non-npt unit."""
        return _npt_seconds(self.start) if self.unit == "npt" else None

    @property
    def end_seconds(self) -> float | None:
        return _npt_seconds(self.end) if self.unit == "npt" and self.end else None

    def __str__(self) -> str:
        text = f"{self.unit}={self.start}-{self.end or ''}"
        return text if self.time is None else f"{text};time={self.time}"


def _npt_seconds(value: str | None) -> float | None:
    if not value or value == "now":
        return None
    if _NPT_SEC.match(value):
        return float(value)
    m = _NPT_HHMMSS.match(value)
    if m:
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    raise ProtocolError(f"bad npt time {value[:30]!r}")
