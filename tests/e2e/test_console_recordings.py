"""The console's Recordings tab and LL-HLS preview, in headless Chromium.

The admin adds a recording rule with the form, a pushed stream shows up as
being recorded, its files are listed, and Play shows a recorded file in
the tab's <video> (one MP4 from the playback API, fetched with HTTP Range
requests by the browser): its clock moves and the picture has its size.
The streams tab previews the same stream over LL-HLS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.browser import chromium_page, wait_video_advancing
from tests.e2e.tools import Pusher

pytestmark = pytest.mark.e2e

PATH = "/cams/door"


def test_recordings_tab_records_lists_and_plays(hub_factory: Callable[..., HubServer],
                                                push: Callable[..., Pusher], tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"recordings": str(rec)}))
    hub = hub_factory("--shards", "2", "--fronts", "2", "--config", str(cfg))
    with chromium_page() as (page, log):
        page.goto(hub.base + "/#recordings")
        page.fill("#login-user", "admin")
        page.fill("#login-password", "admin")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#view-recordings:not([hidden])")
        page.fill("#rec-rule-form input[name=pattern]", "/cams/")
        page.fill("#rec-rule-form input[name=segment]", "3")
        page.fill("#rec-rule-form input[name=max_bytes]", "50MB")
        page.click("#rec-rule-form button[type=submit]")
        page.wait_for_selector('#rec-rules-body tr[data-pattern="/cams/"]')
        assert "50.0 MiB per path" in (page.text_content('#rec-rules-body tr[data-pattern="/cams/"]') or "")

        push(PATH, "h264", srv=hub)
        deadline = time.monotonic() + 30
        while len(list((rec / "cams/door").glob("*.mp4"))) < 3:  # two whole files and one open
            assert time.monotonic() < deadline, "no recordings"
            time.sleep(0.3)
        page.goto(hub.base + "/#streams")
        page.goto(hub.base + "/#recordings")
        page.wait_for_selector(f'#rec-active-body tr.recording[data-path="{PATH}"]')
        page.click(f'#rec-active-body tr.recording[data-path="{PATH}"] a')
        page.wait_for_selector("#rec-files-body tr.rec-file")
        assert page.locator("#rec-files-body tr.rec-file").count() >= 3
        page.click("#rec-files-body tr.rec-file >> nth=0 >> button.play")
        state = wait_video_advancing(page, "#rec-video", advance=1.0, start_timeout=15, log=log)
        assert (state["w"], state["h"]) == (640, 360) and state["error"] is None, state

        # The streams tab plays the same stream over LL-HLS.
        page.goto(hub.base + "/#streams")
        row = f'tr.stream[data-path="{PATH}"]'
        page.wait_for_selector(row, timeout=10_000)
        page.click(f'{row} button[data-play="ll"]')
        state = wait_video_advancing(page, "#preview-video", advance=1.0, start_timeout=25, log=log)
        assert (state["w"], state["h"]) == (640, 360) and state["error"] is None, state
        assert page.is_hidden("#message"), page.text_content("#message")
        assert not log.errors, log.errors
