"""Logging set-up shared by every process: each line names its process."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from .config import LogConfig

_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
           "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
           "PANIC": logging.CRITICAL, "FATAL": logging.CRITICAL}


def setup_logging(proc_name: str, cfg: LogConfig) -> None:
    """Configure the root logger; `proc_name` (`supervisor`, `shard-0`) is in every line."""
    fmt = logging.Formatter(
        f"%(asctime)s {proc_name}[%(process)d] %(levelname)s %(name)s: %(message)s")
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
    root.setLevel(_LEVELS.get(cfg.level.upper(), logging.INFO))
    # uvicorn's own loggers go through ours, without its access log.
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def set_process_title(name: str) -> None:
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - a declared dependency
        return
    setproctitle.setproctitle(f"ipchub: {name}")
