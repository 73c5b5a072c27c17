"""The web console and the demo pages in a real headless Chromium.

One pushed H.264+AAC stream; the console signs in as admin, lists the stream
with its codec and size, and plays it over HTTP-FLV, WS-FLV and HLS into its
preview <video>: the browser's own clock must move and its decoder must report
the picture size. The demo index lists every play path and the HTTP-FLV demo
plays too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

import pytest

from hub.api.rest import console
from tests.conftest import HubServer
from tests.e2e.browser import chromium_page, wait_video_advancing
from tests.e2e.tools import Pusher

pytestmark = pytest.mark.e2e

PATH = "/live/web"
ROW = f'tr.stream[data-path="{PATH}"]'
PREVIEWS = [("flv", 15.0), ("wsflv", 15.0), ("hls", 25.0)]
DEMO_KINDS = ["flv", "wsflv", "hls", "rtsp", "wsp", "rtspws"]


def test_console_signs_in_lists_and_previews(hub: HubServer, push: Callable[..., Pusher],
                                             tmp_path: Path) -> None:
    push(PATH, "h264")
    with chromium_page() as (page, log):
        api_calls: list[tuple[str, str]] = []  # (URL, Authorization) of the console's API requests
        page.on("request", lambda r: api_calls.append((r.url, r.headers.get("authorization") or ""))
                if "/api/v1/" in r.url else None)
        response = page.goto(hub.base + "/")
        assert response is not None and response.status == 200, \
            "GET / is not the console: the app must mount hub.api.rest.console.console_routes()"
        # The console holds an admin's tokens: never framed, no inline script.
        policy = response.headers.get("content-security-policy") or ""
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, policy
        assert response.headers.get("x-frame-options") == "DENY"
        assert response.headers.get("x-content-type-options") == "nosniff"
        page.fill("#login-user", "admin")
        page.fill("#login-password", "admin")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#app:not([hidden])")
        assert page.is_hidden("#message"), page.text_content("#message")

        row = page.wait_for_selector(ROW, timeout=10_000)
        assert row is not None
        video_cell = page.text_content(f"{ROW} td.video") or ""
        assert "H264" in video_cell and "640x360" in video_cell, video_cell
        assert "AAC" in (page.text_content(f"{ROW} td.audio") or "")

        for kind, start_timeout in PREVIEWS:
            page.click(f'{ROW} button[data-play="{kind}"]')
            log.console.append(f"-- test: preview {kind}")
            state = wait_video_advancing(page, "#preview-video", advance=1.0,
                                         start_timeout=start_timeout, advance_timeout=6.0, log=log)
            assert (state["w"], state["h"]) == (640, 360), (kind, state)
            assert state["error"] is None, (kind, state)
            assert page.is_hidden("#message"), (kind, page.text_content("#message"))
            if kind == "flv":
                # The preview is a player of the stream: it shows up in the
                # Consumers expander once the table has polled again.
                page.click(f"{ROW} button.consumers-toggle")
                page.wait_for_selector("tr.consumers-row tr[data-cid]", timeout=10_000)
                assert "FLV" in (page.text_content("tr.consumers-row") or "")

        # Its API calls carry the token in a header, never in the URL (which
        # proxies' logs and the browser's history keep); media URLs still do.
        assert not [u for u, _ in api_calls if "token=" in u], api_calls
        assert any(u.split("?")[0].endswith("/api/v1/streams") and a.startswith("Bearer ")
                   for u, a in api_calls), api_calls

        shot = tmp_path / "console.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"console screenshot: {shot}")
        page.click("#preview-stop")

        page.goto(hub.base + "/demos/")
        for kind in DEMO_KINDS:
            assert page.locator(f'#demo-list a[data-demo="{kind}"]').count() == 1, kind

        # The demos take the token from the console's session (same tab).
        page.goto(f"{hub.base}/demos/rtsp/?path={PATH}")
        page.wait_for_selector("#urls input")
        assert page.input_value("#urls input") == hub.rtsp_url(PATH)
        page.goto(f"{hub.base}/demos/flv/?path={PATH}&autoplay=1")
        state = wait_video_advancing(page, "#video", advance=1.0, log=log)
        assert (state["w"], state["h"]) == (640, 360), state
        assert not log.errors, log.errors
        # Everything above ran under the pages' policy: nothing was refused.
        assert not [line for line in log.console if "Content Security Policy" in line], log.console


def _vendor_response(name: str) -> tuple[int, str]:
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": f"/console/vendor/{name}", "headers": [],
             "query_string": b"", "path_params": {"name": name}}
    response = asyncio.run(console.vendor(Request(scope)))
    return response.status_code, bytes(response.body).decode()


def test_vendor_file_missing_is_a_404_that_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setattr(console, "node_modules_candidates", lambda: [tmp_path / "node_modules"])
    status, body = _vendor_response("mpegts.js")
    assert status == 404
    assert "mpegts.js is not installed" in body and "npm ci" in body
    status, body = _vendor_response("../package.json")
    assert status == 404 and "unknown vendor file" in body


def test_vendor_file_found_in_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib = tmp_path / "node_modules" / "hls.js" / "dist"
    lib.mkdir(parents=True)
    (lib / "hls.min.js").write_bytes(b"/* hls */")
    monkeypatch.setattr(console, "node_modules_candidates", lambda: [tmp_path / "nothing", tmp_path / "node_modules"])
    assert console.find_vendor_file("hls.js") == lib / "hls.min.js"
    assert console.find_vendor_file("mpegts.js") is None
