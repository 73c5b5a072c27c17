"""Headless Chromium plays a pushed H.264 stream over WHEP: the demo page
(/demos/whep/) and the console's WebRTC preview, against the whole server
tree, in a network namespace with only loopback (see webrtc_browser_run.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.browser import chromium_path

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_demo_page_and_console_play_over_whep(tmp_path: Path) -> None:
    chromium_path()  # fails (not skips) without Chromium
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    script = f'ip link set lo up && exec "{sys.executable}" -m tests.e2e.webrtc_browser_run "{tmp_path}"'
    r = subprocess.run([*unshare, "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-4000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    for where in ("demo", "console"):
        state = got[where]
        assert (state["w"], state["h"]) == (640, 360), (where, state)
        assert state["error"] is None, (where, state)
        (video,) = state["inbound"]
        assert video["framesDecoded"] >= 40 and video["frameWidth"] == 640, (where, video)
        (c,) = state["consumers"]  # the page is one WebRTC player of the stream
        assert c["extra"].startswith("net=webrtc,127.0.0.1:") and c["packet_type"] == "RTP", (where, c)
    assert got["demo"]["url"].endswith("/streams/live/webrtc/whep")
    assert got["demo"]["start_s"] < 10
    assert got["after_stop"] == []  # Stop preview DELETEd the session
    assert got["errors"] == []
