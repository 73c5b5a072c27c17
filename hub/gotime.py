"""Go's time formats, which the reference's API answers use."""

from __future__ import annotations

from datetime import datetime, timezone


def rfc3339nano(dt: datetime, nanos: int | None = None) -> str:
    """Go's time.RFC3339Nano: fractional seconds with trailing zeros trimmed."""
    dt = dt.astimezone(timezone.utc)
    ns = dt.microsecond * 1000 if nanos is None else nanos
    frac = f".{ns:09d}".rstrip("0").rstrip(".")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def _fmt_frac(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String(): `4m5.777432525s`, `1h0m0s`, `1.5ms`, `0s`."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fmt_frac(ns / 1e3, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fmt_frac(ns / 1e6, 6)}ms"
    hours, rem = divmod(ns, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    secs, frac_ns = divmod(rem, 1_000_000_000)
    sec_text = str(secs) + (f".{frac_ns:09d}".rstrip("0") if frac_ns else "")
    if hours:
        return f"{sign}{hours}h{minutes}m{sec_text}s"
    if minutes:
        return f"{sign}{minutes}m{sec_text}s"
    return f"{sign}{sec_text}s"
