"""What `RtspServerConnection.next_event()` and `handle_timer()` hand out.

One request event type per RTSP method, each carrying the parsed request,
its CSeq, the split of its URI and its bytes as received; the engine has
already checked the session and the state when one comes out, so the app
only decides (answer it with `respond` or `respond_error`). `$` frames come
out as the reader's `InterleavedFrame`, unchanged. The timer events say why
the engine wants the connection closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .message import RtspRequest
from .state import RtspMethod
from .transport import Transport

M = RtspMethod


@dataclass(eq=False)
class RtspRequestEvent:
    """A request the app must answer before the next one comes out.

    `path` and `query` are the request URI's, still percent-encoded
    (`rtsp://h:554/live/a?x=1` -> "/live/a", "x=1"); `host` is its
    authority without user info ("" for a relative URI or `*`)."""

    method: ClassVar[RtspMethod]

    request: RtspRequest
    cseq: int | None
    host: str
    path: str
    query: str
    raw: bytes = field(repr=False)

    @property
    def uri(self) -> str:
        return self.request.uri


class Options(RtspRequestEvent):
    method = M.OPTIONS


class Describe(RtspRequestEvent):
    method = M.DESCRIBE


class Announce(RtspRequestEvent):
    method = M.ANNOUNCE

    @property
    def sdp(self) -> bytes:
        return self.request.body

    @property
    def content_type(self) -> str:
        """The media type, lower case, parameters dropped."""
        value = self.request.headers.get("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()


@dataclass(eq=False)
class Setup(RtspRequestEvent):
    method = M.SETUP

    transport: Transport = field(default_factory=lambda: Transport([]))


class Play(RtspRequestEvent):
    method = M.PLAY


class Pause(RtspRequestEvent):
    method = M.PAUSE


class Record(RtspRequestEvent):
    method = M.RECORD


class Teardown(RtspRequestEvent):
    method = M.TEARDOWN


class GetParameter(RtspRequestEvent):
    method = M.GET_PARAMETER


class SetParameter(RtspRequestEvent):
    method = M.SET_PARAMETER


def control_after_query(path: str, query: str) -> str | None:
    """FFmpeg (publishing) and some NVRs put a track's control after the
    whole URL, query included: `rtsp://h/live/a?x=1/streamid=0`. The path
    that names that track (`/live/a/streamid=0`), or None when the query
    ends in no such part. For a SETUP no track matched otherwise."""
    tail = query.rpartition("/")[2] if "/" in query else ""
    return f"{path.rstrip('/')}/{tail}" if tail else None


def split_uri(uri: str) -> tuple[str, str, str]:
    """`rtsp://user@h:554/live/a?x=1` -> ("h:554", "/live/a", "x=1");
    a relative URI or `*` has no host. Never raises."""
    rest = uri
    host = ""
    if "://" in rest:
        rest = rest.partition("://")[2]
        end = next((i for i, c in enumerate(rest) if c in "/?"), len(rest))
        host = rest[:end].rpartition("@")[2]
        rest = rest[end:]
    path, _, query = rest.partition("?")
    return host, path or "/", query


EVENT_TYPES: dict[RtspMethod, type[RtspRequestEvent]] = {
    cls.method: cls for cls in (Options, Describe, Announce, Setup, Play, Pause, Record, Teardown,
                                GetParameter, SetParameter)
}


@dataclass(frozen=True)
class RequestTimeout:
    """A request head or body was not complete within the request deadline
    from its first byte; the engine queued a 408 and is closing."""


@dataclass(frozen=True)
class SessionExpired:
    """Nothing was received for the session timeout (no request, no `$`
    frame, no `touch`); the engine is closing. `session_id` is None for a
    connection that never had a session."""

    session_id: str | None


TimerEvent = RequestTimeout | SessionExpired
