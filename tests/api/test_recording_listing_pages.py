"""A recordings listing with a page size over `MAX_FILES` answered 400.

The API takes page sizes up to `hub.store.paging.MAX_PAGE_SIZE` (1000),
but a listing indexes every file of its page and one request may index at
most `MAX_FILES` (400): `page_size=500` on a folder of more than 400
recordings was a 400 ("at most 400 recordings at once"), a page size the
API accepts that did not work. Now the page is clamped to `MAX_FILES` and
its `next_page_token` leads on, as every listing pages: the client walks
the folder in pages of 400.

Real recorded files (one 2 s recording, copied under 450 names) through
the real REST handler, driven in-process over ASGI.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hub.api.rest import recording_files
from hub.store.recordings import file_name
from tests.api.test_recording_playback import PATH, URL, _app, _get
from tests.media.mp4.test_init import aac, h264
from tests.media.mp4.test_playback import T0, av_entries, record

FILES = 450


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    folder = root / PATH.strip("/")
    folder.mkdir(parents=True)
    files, _ = record([([h264(), aac()], av_entries(2), T0)], segment_target=60.0)
    (data,) = files.values()
    for i in range(FILES):
        (folder / file_name(T0 + 60 * i)).write_bytes(data)
    return root


def _page(root: Path, query: str) -> tuple[int, dict[str, object]]:
    status, _, body = asyncio.run(_get(_app(root), query, url=URL))
    return status, json.loads(body)


@pytest.mark.parametrize("size", [401, 500, 1000])
def test_a_page_size_the_api_takes_works(root: Path, size: int) -> None:
    status, page = _page(root, f"page_size={size}")
    assert status == 200, page
    limit = recording_files.MAX_FILES
    first = page["recordings"]
    assert isinstance(first, list) and len(first) == limit
    assert page["total"] == FILES
    assert page["next_page_token"] == first[-1]["name"]
    status, page = _page(root, f"page_size={size}&page_token={page['next_page_token']}")
    assert status == 200, page
    rest = page["recordings"]
    assert isinstance(rest, list) and len(rest) == FILES - limit
    names = [r["name"] for r in first + rest]
    assert names == sorted(names) and len(set(names)) == FILES


def test_a_page_within_the_bound_is_as_asked(root: Path) -> None:
    status, page = _page(root, "page_size=7")
    assert status == 200 and len(page["recordings"]) == 7  # type: ignore[arg-type]
