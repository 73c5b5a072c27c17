"""HLS file names a URL can carry but no file system takes were answered
500, each with a traceback in the log.

A segment number past Python's 4300-digit `int()` limit, a NUL (`%00`) in
the path, or a path part over 255 bytes (ENAMETOOLONG) escaped the
"missing file" branch: `500 internal error` plus a logged traceback for
every such request (a stranger's ~8 KiB request line wrote ~10 KiB of log).
No stream can have such a file: 404, or 400 for a segment number that is
not one, as for any other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.hostile.harness import http_exchange

LONG = "a" * 300


@pytest.mark.parametrize("target, status", [
    ("/streams/live/x/" + "1" * 300 + ".ts", 400),
    ("/streams/live/x/" + "1" * 5000 + ".ts", 400),
    ("/streams/live/x%00/1.ts", 404),
    (f"/streams/live/{LONG}/1.ts", 404),
    (f"/streams/live/{LONG}/fmp4/1.m4s", 404),
    (f"/streams/live/{LONG}/fmp4/init0.mp4", 404),
], ids=["300 digits", "5000 digits", "nul", "long part", "long part fmp4", "long part init"])
def test_unfit_names_are_not_found(tmp_path: Path, hub_factory: Callable[..., HubServer],
                                   target: str, status: int) -> None:
    hls = tmp_path / "hls"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hlspath": str(hls)}))
    hub = hub_factory("--shards", "1", "--fronts", "1", "--config", str(config))
    (hls / f"ipchub-hls-{hub.proc.pid}" / "live" / "x").mkdir(parents=True)  # a stream's folder
    got, _, _ = http_exchange(hub.port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert got == status
    assert "Traceback" not in hub.log()
