"""`log.format: json`: every line of every process is one JSON object."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from typing import Any, Callable

from hub.logs import JsonFormatter, TextFormatter, rfc3339
from tests.conftest import ROOT, HubServer

FIXED = {"time", "process", "pid", "level", "logger", "event"}


def _record(msg: str, *args: object, **extra: Any) -> logging.LogRecord:
    r = logging.LogRecord("hub.test", logging.WARNING, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    return r


def _parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    t = datetime.fromisoformat(text[:-1] + "+00:00")
    assert t.tzinfo == timezone.utc
    return t


def test_json_line_has_the_fixed_keys_and_extra_fields() -> None:
    r = _record("player %s left", "p1", path="/live/cam", bytes=1234, duration=1.5)
    r.created = 1714564800.25
    obj = json.loads(JsonFormatter("front-2").format(r))
    assert obj == {"time": "2024-05-01T12:00:00.250Z", "process": "front-2", "pid": r.process,
                   "level": "WARNING", "logger": "hub.test", "event": "player p1 left",
                   "path": "/live/cam", "bytes": 1234, "duration": 1.5}


def test_json_line_carries_the_traceback_and_odd_values() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        r = logging.LogRecord("hub.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    r.__dict__["peer"] = ("127.0.0.1", 5000)
    r.__dict__["obj"] = object()
    line = JsonFormatter("shard-0").format(r)
    assert "\n" not in line
    obj = json.loads(line)
    assert "ValueError: bad" in obj["exc"] and obj["peer"] == ["127.0.0.1", 5000]
    assert obj["obj"].startswith("<object object")


def test_text_line_appends_extra_fields() -> None:
    r = _record("session end", path="/a b", bytes=10)
    line = TextFormatter("front-0").format(r)
    assert line.endswith(f' front-0[{r.process}] WARNING hub.test: session end path="/a b" bytes=10')


def test_rfc3339() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1714564800.9999) == "2024-05-01T12:00:00.999Z"


def test_every_line_is_json_even_warnings_and_crashes() -> None:
    """setup_logging in a fresh process: a warning, the access log and an
    uncaught exception all come out as JSON lines."""
    code = textwrap.dedent("""
        import logging, warnings
        from hub.config import LogConfig
        from hub.logs import log_access, setup_logging
        setup_logging("front-3", LogConfig(format="json", access=True))
        logging.getLogger("hub.api").info("hello", extra={"remote": "127.0.0.1"})
        log_access("player", path="/live/a", protocol="flv", remote="127.0.0.1:5000", user="bob",
                   duration=2.5, bytes=1000)
        warnings.warn("deprecated thing")
        raise RuntimeError("boom")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    lines = [json.loads(line) for line in r.stderr.splitlines()]
    assert all(FIXED <= obj.keys() and obj["process"] == "front-3" for obj in lines)
    events = {obj["event"]: obj for obj in lines}
    assert events["hello"]["remote"] == "127.0.0.1" and events["hello"]["logger"] == "hub.api"
    access = events["player"]
    assert access["logger"] == "hub.access" and access["level"] == "INFO"
    assert (access["path"], access["protocol"], access["user"], access["bytes"]) == ("/live/a", "flv", "bob", 1000)
    assert any("deprecated thing" in e for e in events)
    crash = events["uncaught exception"]
    assert crash["level"] == "CRITICAL" and "RuntimeError: boom" in crash["exc"]


def test_access_log_is_off_by_default() -> None:
    code = textwrap.dedent("""
        from hub.config import LogConfig
        from hub.logs import log_access, setup_logging
        setup_logging("front-0", LogConfig())
        log_access("player", path="/live/a")
        import logging; logging.getLogger("hub").info("after")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert "after" in r.stderr and "player" not in r.stderr


def test_tree_logs_json_from_every_process(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--log-format", "json")
    pids = {"supervisor": srv.proc.pid}
    for p in srv.children():
        title = " ".join(p.cmdline())
        for name in ("shard-0", "front-0"):
            if f"ipchub: {name}" in title:
                pids[name] = p.pid
    srv.get_json("/api/v1/server")
    assert srv.stop() == 0
    text = srv.log()
    lines = text.splitlines()
    assert lines, text
    seen: dict[str, int] = {}
    for line in lines:
        obj = json.loads(line)  # every line, not just most
        assert FIXED <= obj.keys(), obj
        _parse_time(obj["time"])
        assert obj["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert isinstance(obj["event"], str) and isinstance(obj["logger"], str)
        seen[obj["process"]] = obj["pid"]
    assert {"supervisor", "shard-0", "front-0"} <= seen.keys(), seen
    assert all(seen[name] == pid for name, pid in pids.items()), (seen, pids)
