"""The web console (`/`), its assets (`/console/...`) and the demo pages (`/demos/`).

Plain files, no build step: the pages are HTML, CSS and small ES modules
under `static/`. The two browser players (mpegts.js for HTTP-FLV and WS-FLV,
hls.js for HLS) come from npm (`package.json` at the repository root,
installed with `npm ci` into `node_modules/`, not committed) and are served
from there at `/console/vendor/mpegts.js` and `/console/vendor/hls.js`, so a
player upgrade is a lock-file change and the repository carries no minified
third-party code.

The lead mounts `console_routes()` into the Starlette app; nothing here
touches the media paths (`/streams/...` never reaches Starlette).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"

# The repository root when running from a checkout: hub/api/console/ -> root.
_REPO_ROOT = Path(__file__).resolve().parents[4]

# URL name -> file inside node_modules. A fixed table, so a request can never
# name an arbitrary file under node_modules.
VENDOR_FILES: dict[str, str] = {
    "mpegts.js": "mpegts.js/dist/mpegts.js",
    "mpegts.js.map": "mpegts.js/dist/mpegts.js.map",
    "hls.js": "hls.js/dist/hls.min.js",
    "hls.min.js.map": "hls.js/dist/hls.min.js.map",
}

# Caching: our own files change with every deploy, so revalidate (ETag /
# Last-Modified make that a 304); vendor files change only with the lock file.
_NO_STALE = {"Cache-Control": "no-cache"}

#: The pages' policy: scripts only from here (no inline script, so injected
#: markup cannot run), players' blob: workers and media, same-origin API and
#: streams (WS-FLV, WSP included), no plugins, no <base> games. The console
#: holds an admin's tokens: it is never framed (clickjacking); the demo pages
#: show how to embed players, so they may be.
_CSP = ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; media-src 'self' blob: data:; "
        "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'")
_FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CONSOLE_HEADERS = {**_NO_STALE, **_FILE_HEADERS, "Content-Security-Policy": _CSP + "; frame-ancestors 'none'",
                   "X-Frame-Options": "DENY"}
DEMO_HEADERS = {**_NO_STALE, **_FILE_HEADERS, "Content-Security-Policy": _CSP}


def node_modules_candidates() -> list[Path]:
    """Where `npm ci` may have put the player libraries, first match wins.

    `HUB_NODE_MODULES` names the folder explicitly (a packaged install, a
    container image); otherwise the checkout's root and the working folder.
    """
    out: list[Path] = []
    env = os.environ.get("HUB_NODE_MODULES")
    if env:
        out.append(Path(env))
    out.append(_REPO_ROOT / "node_modules")
    out.append(Path.cwd() / "node_modules")
    return out


def find_vendor_file(name: str) -> Path | None:
    """The installed file behind `/console/vendor/NAME`, or None."""
    rel = VENDOR_FILES.get(name)
    if rel is None:
        return None
    for folder in node_modules_candidates():
        candidate = folder / rel
        if candidate.is_file():
            return candidate
    return None


async def vendor(request: Request) -> Response:
    """A browser player library from node_modules, or a 404 that says how to fix it."""
    name = request.path_params["name"]
    if name not in VENDOR_FILES:
        return Response(f"unknown vendor file {name!r}\n", status_code=404, media_type="text/plain")
    path = find_vendor_file(name)
    if path is None:
        package = VENDOR_FILES[name].split("/", 1)[0]
        message = (f"{package} is not installed: run `npm ci` in the repository root "
                   f"(make webdeps), or set HUB_NODE_MODULES to a node_modules folder that has it\n")
        return Response(message, status_code=404, media_type="text/plain")
    media_type = "application/json" if name.endswith(".map") else "text/javascript"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600", **_FILE_HEADERS})


async def console_page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=CONSOLE_HEADERS)


async def demos_slash(request: Request) -> Response:
    return RedirectResponse("/demos/", status_code=301)


#: The demo kinds: one page (demos/play.html) serves them all.
DEMO_KINDS = frozenset({"flv", "wsflv", "hls", "whep", "rtsp", "wsp", "rtspws"})


async def demo_page(request: Request) -> Response:
    if not request.url.path.endswith("/"):
        return RedirectResponse(request.url.path + "/", status_code=301)
    return FileResponse(STATIC / "demos" / "play.html", media_type="text/html", headers=DEMO_HEADERS)


class _RevalidatedFiles(StaticFiles):
    """StaticFiles that asks browsers to revalidate (a deploy shows at once),
    with `headers` on every file (a page's policy)."""

    def __init__(self, *, headers: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra_headers = headers

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self.extra_headers)
        return response


def console_routes() -> list[BaseRoute]:
    """The console's routes, to put in the app's route list (before any catch-all)."""
    return [
        Route("/", console_page, methods=["GET", "HEAD"]),
        Route("/console/vendor/{name}", vendor, methods=["GET", "HEAD"]),
        Mount("/console", app=_RevalidatedFiles(directory=STATIC / "console", headers=CONSOLE_HEADERS),
              name="console"),
        Route("/demos", demos_slash, methods=["GET", "HEAD"]),
        *(Route(f"/demos/{kind}{slash}", demo_page, methods=["GET", "HEAD"])
          for kind in sorted(DEMO_KINDS) for slash in ("/", "")),
        Mount("/demos", app=_RevalidatedFiles(directory=STATIC / "demos", html=True, headers=DEMO_HEADERS),
              name="demos"),
    ]


__all__ = ["console_routes", "find_vendor_file", "VENDOR_FILES", "STATIC"]
