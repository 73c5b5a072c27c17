"""A headless Chromium for end-to-end tests, driven by Playwright.

The browser is the system's (Debian's `chromium` package), never one that
Playwright downloads: `playwright install` fetches a browser build from outside
the package registries, which neither CI nor the developers' machines can do.
Debian's build decodes H.264 and AAC through Media Source Extensions, which is
all the console's players need.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    """The system Chromium; fails the test (not skips) when it is missing."""
    env = os.environ.get("HUB_CHROMIUM")
    for candidate in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail("Chromium is required for the browser tests: apt-get install -y chromium "
                "(or set HUB_CHROMIUM to its path)")


@dataclass
class BrowserLog:
    """What the page said on its console and which script errors it threw."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[tuple[Page, BrowserLog]]:
    """A fresh page in a fresh headless Chromium, closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright Python package is required for the browser tests: pip install playwright")
    log = BrowserLog()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                     headless=True, timeout=30_000)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            yield page, log
        finally:
            browser.close()


VIDEO_STATE_JS = """(sel) => {
  const v = document.querySelector(sel);
  if (!v) return null;
  return {t: v.currentTime, w: v.videoWidth, h: v.videoHeight, paused: v.paused,
          ready: v.readyState, error: v.error ? (v.error.message || String(v.error.code)) : null};
}"""


def video_state(page: Page, selector: str) -> dict[str, Any]:
    state: dict[str, Any] | None = page.evaluate(VIDEO_STATE_JS, selector)
    if state is None:
        raise AssertionError(f"no element {selector!r} on {page.url}")
    return state


def wait_video_advancing(page: Page, selector: str, advance: float = 1.0,
                         start_timeout: float = 15.0, advance_timeout: float = 6.0,
                         log: BrowserLog | None = None) -> dict[str, Any]:
    """Until the <video> shows a picture and its clock moves `advance` seconds.

    Returns the last state ({t, w, h, paused, ready, error}). Fails with the
    states seen (and the page's last console lines when `log` is given), so a
    stall, an error and a black element read differently.
    """
    tail = (lambda: "\n  page console: " + "\n  ".join(log.console[-12:])) if log else (lambda: "")
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + start_timeout
    state = video_state(page, selector)
    while not (state["w"] > 0 and state["t"] > 0):
        seen.append(state)
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} did not start playing in {start_timeout}s: {seen[-3:]}{tail()}")
        page.wait_for_timeout(200)
        state = video_state(page, selector)
    t0 = state["t"]
    deadline = time.monotonic() + advance_timeout
    while state["t"] - t0 <= advance:
        seen.append(state)
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} played but stalled: currentTime {t0:.2f} -> "
                                 f"{state['t']:.2f} in {advance_timeout}s: {seen[-3:]}{tail()}")
        page.wait_for_timeout(200)
        state = video_state(page, selector)
    return state
