"""Sans-IO RTMP: handshake, chunk stream, AMF0 commands, media messages, the
server connection state machine and the shared play mux.

No sockets, no asyncio, no clock reads: the owner feeds bytes and ``now`` in
and writes the bytes it gets back (see ``server.py`` for the loop).
"""

from __future__ import annotations

from .constants import RtmpProtocolError
from .events import (
    NEED_DATA, PAUSED, Connect, DeleteStream, Event, HandshakeDone, Metadata, NextEvent, Play,
    PingResponse, Publish, TimedOut, Unpublish,
)
from .media import MediaUnit, parse_media
from .play import RtmpPlayMuxer
from .server import RtmpServerConnection, RtmpState

__all__ = [
    "Connect", "DeleteStream", "Event", "HandshakeDone", "MediaUnit", "Metadata", "NEED_DATA",
    "NextEvent", "PAUSED", "Play", "PingResponse", "Publish", "RtmpPlayMuxer",
    "RtmpProtocolError", "RtmpServerConnection", "RtmpState", "TimedOut", "Unpublish",
    "parse_media",
]
