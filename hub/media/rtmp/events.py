"""What :class:`~hub.media.rtmp.server.RtmpServerConnection` hands its owner.

``next_event()`` returns one of these dataclasses, ``NEED_DATA`` (feed more
bytes) or ``PAUSED`` (a Connect, Publish or Play waits for the owner's
``accept_*``/``reject_*``; nothing more is read until then).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Union

from hub.media.amf0 import AmfValue

from .media import MediaUnit


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"


NEED_DATA: Literal[_Sentinel.NEED_DATA] = _Sentinel.NEED_DATA
PAUSED: Literal[_Sentinel.PAUSED] = _Sentinel.PAUSED


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    """C2 arrived. ``digest_scheme`` is 0 or 1 for a digest C1, None for simple."""

    digest_scheme: int | None
    client_version: bytes


@dataclass(frozen=True, slots=True)
class Connect:
    """``connect``: answer with ``accept_connect()`` or ``reject_connect()``."""

    app: str  # without its query
    tc_url: str
    query: dict[str, str]
    flash_ver: str = ""
    properties: dict[str, AmfValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Publish:
    """``publish``: answer with ``accept_publish()`` or ``reject_publish()``.
    ``query`` merges the app's and the stream name's (the latter wins)."""

    path: str  # "/app/stream"
    app: str
    stream: str
    query: dict[str, str]
    publish_type: str = "live"


@dataclass(frozen=True, slots=True)
class Play:
    """``play``: answer with ``accept_play()`` or ``reject_play()``."""

    path: str
    app: str
    stream: str
    query: dict[str, str]
    start: float = -2.0


@dataclass(frozen=True, slots=True)
class Metadata:
    """The publisher's ``@setDataFrame``/``onMetaData`` properties."""

    values: dict[str, AmfValue]


@dataclass(frozen=True, slots=True)
class Unpublish:
    """The publisher ended its stream (FCUnpublish, deleteStream or closeStream)."""

    path: str


@dataclass(frozen=True, slots=True)
class DeleteStream:
    """``deleteStream``/``closeStream`` from a player (or with nothing published)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PingResponse:
    """The peer answered our ``ping()`` with this timestamp."""

    timestamp: int


@dataclass(frozen=True, slots=True)
class TimedOut:
    """A deadline passed (``handle_timer``); the connection is closed."""

    reason: str


Event = Union[HandshakeDone, Connect, Publish, Play, MediaUnit, Metadata, Unpublish,
              DeleteStream, PingResponse, TimedOut]
NextEvent = Union[Event, Literal[_Sentinel.NEED_DATA], Literal[_Sentinel.PAUSED]]
