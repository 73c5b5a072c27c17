"""Checking one configuration value: the parsers `hub.config.load` applies to
every key, each naming the key in the ConfigError it raises."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ConfigError", "default_processes", "as_bool", "as_int", "as_str", "as_seconds", "as_token", "as_list", "port_range"]


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the key."""


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def as_bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[v.strip().lower()]
    raise ConfigError(f"{key}: expected true or false, got {v!r}")


def as_int(key: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ConfigError(f"{key}: expected a whole number, got {v!r}")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {v!r}") from None
    if not lo <= n <= hi:
        raise ConfigError(f"{key}: {n} is out of range {lo}..{hi}")
    return n


def as_str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{key}: expected a string, got {v!r}")
    return v


def port_range(key: str, v: Any) -> tuple[int, int]:
    text = str(v)
    lo_t, sep, hi_t = text.partition("-")
    if not sep:
        raise ConfigError(f"{key}: expected MIN-MAX, got {v!r}")
    lo = as_int(key, lo_t, 1024, 65535)
    hi = as_int(key, hi_t, 1024, 65535)
    if hi - lo < 3:
        raise ConfigError(f"{key}: range {lo}-{hi} is too small")
    return lo, hi


def as_list(key: str, v: Any, most: int) -> list[str]:
    """A JSON list of at most `most` strings, or (env, flags) one comma-separated string."""
    if isinstance(v, str):
        v = [p for p in v.split(",") if p.strip()]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{key}: expected a list of strings, got {v!r}")
    if len(v) > most:
        raise ConfigError(f"{key}: at most {most} entries")
    return [x.strip() for x in v]


def as_seconds(key: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool):
        raise ConfigError(f"{key}: expected a number of seconds, got {v!r}")
    try:
        n = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number of seconds, got {v!r}") from None
    if not lo <= n <= hi:  # also refuses NaN
        raise ConfigError(f"{key}: {n:g} is out of range {lo:g}..{hi:g}")
    return n


def as_token(key: str, v: Any) -> str | None:
    """A bearer token (RFC 6750 token68 characters), or None for "" / null."""
    if v is None or v == "":
        return None
    text = as_str(key, v)
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
    if not set(text) <= allowed:
        raise ConfigError(f"{key}: only letters, digits and -._~+/= are allowed")
    if len(text) > 512:
        raise ConfigError(f"{key}: longer than 512 characters")
    return text


def default_processes(cpus: int | None = None) -> int:
    """Shards (and fronts) when not set: one per CPU, but one of each on a
    box of 1-2 CPUs, where a second pair would cost its fixed memory and
    wake-ups for no throughput the CPUs could give."""
    n = cpus if cpus is not None else (os.cpu_count() or 1)
    return 1 if n <= 2 else n
