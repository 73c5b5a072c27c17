"""Logging set-up shared by every process: each line names its process.

Two formats (`log.format`): `text`, one line `time name[pid] LEVEL logger:
message key=value...`, and `json`, one object per line with `time` (RFC 3339,
UTC), `process`, `pid`, `level`, `logger`, `event` (the message) and every
field a caller passed with `extra=`. Children get the format through the
configuration the supervisor hands them.

The access log (`log.access`) is the logger `hub.access`: one INFO line per
player or publisher session at its end, its fields passed with `extra=`
(see `log_access`). It is off unless the operator turns it on.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from types import TracebackType
from typing import Any

from .config import LogConfig

_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
           "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
           "PANIC": logging.CRITICAL, "FATAL": logging.CRITICAL}

ACCESS_LOGGER = "hub.access"

# Attributes every LogRecord has; anything else on a record came from `extra=`
# (but uvicorn's `color_message`, the message with terminal colours, is noise).
_RECORD_ATTRS = (frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
                 | {"message", "asctime", "color_message", "taskName"})


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and not k.startswith("_")}


def rfc3339(ts: float) -> str:
    """`2024-05-01T12:00:00.123Z` for a Unix time."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, proc_name: str) -> None:
        super().__init__()
        self.proc_name = proc_name

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": rfc3339(record.created), "process": self.proc_name, "pid": record.process,
            "level": record.levelname, "logger": record.name, "event": record.getMessage(),
        }
        for k, v in record_fields(record).items():
            out.setdefault(k, v)  # a field never hides one of the fixed keys
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time name[pid] LEVEL logger: message key=value ...`."""

    def __init__(self, proc_name: str) -> None:
        super().__init__(f"%(asctime)s {proc_name}[%(process)d] %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if not fields:
            return line
        head, nl, tail = line.partition("\n")  # fields before any traceback
        pairs = " ".join(f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in fields.items())
        return f"{head} {pairs}{nl}{tail}"


def loggable_target(target: str, limit: int = 120) -> str:
    """A request target or URI as a log line may show it: no query (it may
    carry `?token=`, RTMP's `?pass=`) and no userinfo (`user:pass@`)."""
    text = target.split("?", 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep:
        host_end = len(rest)
        for c in "/#":
            i = rest.find(c)
            if i != -1:
                host_end = min(host_end, i)
        at = rest.rfind("@", 0, host_end)
        if at != -1:
            text = f"{scheme}://{rest[at + 1:]}"
    return text[:limit]


def level_number(level: str) -> int:
    return _LEVELS.get(level.upper(), logging.INFO)


def setup_logging(proc_name: str, cfg: LogConfig) -> None:
    """Configure the root logger; `proc_name` (`supervisor`, `shard-0`) is in every line."""
    fmt: logging.Formatter = JsonFormatter(proc_name) if cfg.format == "json" else TextFormatter(proc_name)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if cfg.tofile:
        os.makedirs(os.path.dirname(os.path.abspath(cfg.filename)), exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            cfg.filename, maxBytes=max(1, cfg.maxsize) << 20, backupCount=cfg.maxbackups)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(fmt)
    root.addHandler(handler)
    root.setLevel(level_number(cfg.level))
    # uvicorn's own loggers go through ours, without its access log.
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    access = logging.getLogger(ACCESS_LOGGER)
    access.disabled = not cfg.access
    # Turned on, the access log is written whatever `log.level` says.
    access.setLevel(logging.INFO if cfg.access else logging.NOTSET)
    # Warnings and uncaught exceptions in the format too, so that every line
    # of a JSON log parses.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("hub").critical("uncaught exception", exc_info=(kind, exc, tb))


_access = logging.getLogger(ACCESS_LOGGER)


def log_access(event: str, **fields: Any) -> None:
    """One access-log line (`hub.access`), e.g. at a player session's end:
    `log_access("player", path=..., protocol=..., remote=..., user=...,
    duration=..., bytes=...)`. Costs one attribute check when the log is off."""
    if not _access.disabled:
        _access.info(event, extra=fields)


def set_process_title(name: str) -> None:
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a declared dependency
        return
    setproctitle.setproctitle(f"ipchub: {name}")
