"""Sans-IO RTSP (RFC 2326): messages, the incremental reader, one module per
header, Basic/Digest auth and the server-session state machine.

No sockets, no asyncio, no clock reads: the server front, the shard and the
route puller feed bytes in and write the bytes they get back.
"""

from __future__ import annotations

from .auth import (
    BasicChallenge, BasicCredentials, DigestChallenge, DigestCredentials, authorization_for,
    digest_ha1, parse_authorization, parse_challenge, pick_challenge, verify_digest,
)
from .general import ContentBase, CSeq, Public
from .headers import Headers
from .message import REASONS, InterleavedFrame, RtspRequest, RtspResponse, frame_header
from .range import RangeHeader
from .reader import NEED_DATA, RtspReader, parse_message
from .rtpinfo import RtpInfo, RtpInfoEntry
from .session import SessionHeader
from .state import RtspMethod, RtspServerSession, RtspState, new_session_id, next_state
from .transport import Transport, TransportSpec

__all__ = [
    "BasicChallenge", "BasicCredentials", "CSeq", "ContentBase", "DigestChallenge",
    "DigestCredentials", "Headers", "InterleavedFrame", "NEED_DATA", "Public", "REASONS",
    "RangeHeader", "RtpInfo", "RtpInfoEntry", "RtspMethod", "RtspReader", "RtspRequest",
    "RtspResponse", "RtspServerSession", "RtspState", "SessionHeader", "Transport",
    "TransportSpec", "authorization_for", "digest_ha1", "frame_header", "new_session_id",
    "next_state", "parse_authorization", "parse_challenge", "parse_message", "pick_challenge",
    "verify_digest",
]
