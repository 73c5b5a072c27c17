"""Sans-IO RTSP (RFC 2326): messages, the incremental reader, one module per
header, Basic/Digest auth and the server-session state machine."""

from __future__ import annotations

from .headers import Headers
from .message import REASONS, InterleavedFrame, RtspRequest, RtspResponse, frame_header
from .reader import NEED_DATA, RtspReader, parse_message

__all__ = [
    "Headers", "InterleavedFrame", "NEED_DATA", "REASONS", "RtspReader", "RtspRequest",
    "RtspResponse", "frame_header", "parse_message",
]
