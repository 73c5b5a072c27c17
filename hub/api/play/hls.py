"""HLS on the media paths: playlists and files the owning shard's segmenters write.

- ``/streams/PATH.m3u8`` — the playlist of the variant ``?variant=ts|fmp4|ll``
  asks for (default: config ``hls.variant``, itself ``ts``): MPEG-TS
  segments, fMP4 segments (H.265 plays in hls.js and Safari), or
  Low-Latency HLS (fMP4 parts, preload hint, blocking reload with
  ``_HLS_msn``/``_HLS_part``, which players add to the same URL).
- ``/streams/PATH/N.ts`` — a TS segment;
  ``/streams/PATH/fmp4/{initV.mp4,N.m4s,partN.m4s}`` — fMP4 files. A request
  for the part the preload hint names waits until it exists.

A token (``?token=``) on the playlist request is added to every URI in it.
"""

from __future__ import annotations

import errno
import re
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlencode

from ...errors import BadRequest, NotFound
from ...hls_files import fmp4_folder, hls_root, stream_folder
from ...ipc import messages as M
from ...media.hls import Reload, reload_decision
from ...media.http1 import HttpRequestHead
from ..http_responses import raw_http_response
from .hls_live import LiveHls
from .shared_files import SharedFiles

if TYPE_CHECKING:
    from ..context import FrontContext

VARIANTS = ("ts", "fmp4", "ll")
PLAYLIST_TYPE = "application/x-mpegURL"

#: A stream's fMP4 files: init segments, segments and parts.
FMP4_FILE = re.compile(r"^(?P<path>/.+)/fmp4/(?P<name>init\d{1,9}\.mp4|part\d{1,18}\.m4s|\d{1,18}\.m4s)$")
_URI_ATTR = re.compile(r'URI="([^"]*)"')
#: How far past the hinted part a part request may wait (the hint itself, and one more).
PART_AHEAD = 1


def with_query(text: str, query: Mapping[str, str]) -> str:
    """Every URI of a playlist (lines and ``URI="..."`` attributes) with ``query`` added."""
    if not query:
        return text
    suffix = "?" + urlencode(query)
    text = _URI_ATTR.sub(lambda m: f'URI="{m.group(1)}{suffix}"', text)
    return "\n".join(ln + suffix if ln and not ln.startswith("#") else ln for ln in text.split("\n"))


def _token_query(head: HttpRequestHead) -> dict[str, str]:
    token = head.query.get("token")
    return {"token": token} if token else {}


#: An answer: its head, and its body to be written after it (a segment's
#: body is the buffer every request for it shares: `shared_files`).
Answer = tuple[bytes, "bytes | array[int]"]

#: This front's segments being sent.
SEGMENTS = SharedFiles()


def _ok(body: bytes | array[int], content_type: str, cache: str = "no-cache") -> Answer:
    return raw_http_response(200, "OK", b"", content_type, extra={"Cache-Control": cache}, length=len(body)), body


def _read(folder: Path, name: str) -> bytes:
    """A playlist's bytes (rewritten as it grows: read each time)."""
    try:
        return (folder / name).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("404 page not found") from None


def _segment(folder: Path, name: str) -> array[int]:
    data = _segment_if_there(folder, name)
    if data is None:
        raise NotFound("404 page not found")
    return data


def _segment_if_there(folder: Path, name: str) -> array[int] | None:
    """A segment's (or part's) bytes, shared; None when no stream could have
    written it: missing, or a name the file system refuses (a NUL, a part
    over 255 bytes), which a URL can carry."""
    try:
        return SEGMENTS.read(folder / name)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return None
        raise


async def playlist(front: FrontContext, head: HttpRequestHead, path: str, client: str) -> Answer:
    """The whole HTTP response to a playlist request (``path`` canonical)."""
    variant = head.query.get("variant") or front.config.hls.variant
    if variant not in VARIANTS:
        raise BadRequest("variant must be ts, fmp4 or ll")
    if variant == "ll":
        live = await front.hls_live.get(path)
        msn, part = head.query.get("_HLS_msn"), head.query.get("_HLS_part")
        if reload_decision(live.state, msn, part) is Reload.WAIT:
            await live.wait(client, lambda lv: reload_decision(lv.state, msn, part) is Reload.READY,
                            live.state.timeout)
        text = _read(live.folder, "ll.m3u8").decode()
    elif variant == "fmp4":
        reply = await front.shard_request(path, M.HLS_OPEN({"path": path, "variant": "fmp4"}), timeout=20.0)
        text = _read(Path(reply["folder"]), "index.m3u8").decode()
    else:
        reply = await front.shard_request(path, M.HLS_OPEN({"path": path}), timeout=20.0)
        text = _read(Path(reply["folder"]), "index.m3u8").decode()
    return _ok(with_query(text, _token_query(head)).encode(), PLAYLIST_TYPE)


def ts_segment(front: FrontContext, path: str, seq: int) -> Answer:
    folder = stream_folder(hls_root(front.config.hlspath, front.args.instance), path)
    return _ok(_segment(folder, f"{seq}.ts"), "video/mp2t", "max-age=60")


async def fmp4_file(front: FrontContext, path: str, name: str, client: str) -> Answer:
    """An init segment, segment or part; the hinted part once it exists."""
    folder = fmp4_folder(hls_root(front.config.hlspath, front.args.instance), path)
    content_type = "video/mp4" if name.endswith(".mp4") else "video/iso.segment"
    data = _segment_if_there(folder, name)
    if data is not None:
        return _ok(data, content_type, "max-age=60")
    if not name.startswith("part"):
        raise NotFound("404 page not found")
    n = int(name[4:-4])
    live = await front.hls_live.get(path)
    if not live.next_part <= n <= live.next_part + PART_AHEAD:
        raise NotFound("404 page not found")  # gone already, or not hinted yet

    def written(lv: LiveHls) -> bool:
        return lv.next_part > n

    await live.wait(client, written, live.state.timeout)
    return _ok(_segment(live.folder, name), content_type, "max-age=60")
