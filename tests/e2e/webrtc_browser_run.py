"""Headless Chromium plays a pushed stream over WHEP from the demo page and
from the console's preview; prints one JSON result. Not a test module.

Run by test_webrtc_browser.py inside a network namespace that has only a
loopback interface (`unshare -n`), server, pusher and browser together:
Chromium gathers candidates on every interface it sees, and there it sees
only 127.0.0.1, so every datagram stays on loopback.

    python webrtc_browser_run.py WORK_FOLDER
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.conftest import start_server
from tests.e2e.browser import CHROMIUM_ARGS, BrowserLog, chromium_path, wait_video_advancing
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media

PATH = "/live/webrtc"
ROW = f'tr.stream[data-path="{PATH}"]'
ARGS = [*CHROMIUM_ARGS, "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"]

INBOUND = """async () => { const out = [];
  for (const pc of window.__pcs || []) (await pc.getStats()).forEach(s => {
    if (s.type == 'inbound-rtp' && s.kind == 'video') out.push({framesDecoded: s.framesDecoded,
      packetsLost: s.packetsLost, frameWidth: s.frameWidth, pliCount: s.pliCount}); });
  return out; }"""
# Keep a handle on the page's peer connections, to read their statistics.
TRACK_PCS = """(() => { const Orig = window.RTCPeerConnection; window.__pcs = [];
  window.RTCPeerConnection = function (...a) { const pc = new Orig(...a); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Orig.prototype; })();"""


def consumers(srv: Any) -> list[dict[str, Any]]:
    try:
        return list(srv.get_json(f"/api/v1/streams{PATH}?c=1").get("cs", []))
    except OSError:
        return []


def main(work: Path) -> dict[str, Any]:
    srv = start_server(work, "--shards", "1", "--fronts", "2")
    pusher = Pusher(srv.rtsp_url(PATH), make_media(work, "h264")).start()
    out: dict[str, Any] = {}
    try:
        wait_live(srv, PATH)
        log = BrowserLog()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=ARGS, headless=True, timeout=30_000)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.set_default_timeout(15_000)
                page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: log.errors.append(str(e)))
                page.add_init_script(TRACK_PCS)
                # 1. The demo page, started by its URL.
                t0 = time.monotonic()
                page.goto(f"{srv.base}/demos/whep/?path={PATH}&autoplay=1")
                state = wait_video_advancing(page, "#video", advance=2.0, start_timeout=15, log=log)
                out["demo"] = {**state, "start_s": time.monotonic() - t0, "url": page.input_value("#urls input"),
                               "inbound": page.evaluate(INBOUND), "consumers": consumers(srv)}
                # 2. The console's preview button.
                page.goto(srv.base + "/")
                page.fill("#login-user", "admin")
                page.fill("#login-password", "admin")
                page.click("#login-form button[type=submit]")
                page.wait_for_selector(ROW, timeout=10_000)
                page.click(f'{ROW} button[data-play="whep"]')
                state = wait_video_advancing(page, "#preview-video", advance=2.0, start_timeout=15, log=log)
                out["console"] = {**state, "inbound": page.evaluate(INBOUND), "consumers": consumers(srv)}
                page.click("#preview-stop")  # ends the session with DELETE
                deadline = time.monotonic() + 5
                while consumers(srv) and time.monotonic() < deadline:
                    time.sleep(0.2)
                out["after_stop"] = consumers(srv)
                out["errors"] = log.errors
            finally:
                browser.close()
    finally:
        pusher.stop()
        srv.stop()
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
