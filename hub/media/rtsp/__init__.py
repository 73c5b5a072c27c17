"""Sans-IO RTSP (RFC 2326): messages, the incremental reader, one module per
header, Basic/Digest auth, the server-session state machine and the server
connection engine (`server.RtspServerConnection`) every RTSP transport drives.

No sockets, no asyncio, no clock reads: the server front, the shard and the
route puller feed bytes in and write the bytes they get back.
"""

from __future__ import annotations

from .auth import (
    BasicChallenge, BasicCredentials, DigestChallenge, DigestCredentials, DigestVerdict, authorization_for,
    check_digest, digest_ha1, digest_uri_matches, parse_authorization, parse_challenge, pick_challenge,
    verify_digest,
)
from .events import (
    Announce, Describe, GetParameter, Options, Pause, Play, Record, RequestTimeout, RtspRequestEvent,
    SessionExpired, SetParameter, Setup, Teardown, control_after_query,
)
from .general import ContentBase, CSeq, Public
from .headers import Headers
from .message import REASONS, InterleavedFrame, RtspRequest, RtspResponse, frame_header
from .range import RangeHeader
from .reader import NEED_DATA, RtspReader, parse_message
from .rtpinfo import RtpInfo, RtpInfoEntry
from .session import SessionHeader
from .server import RtspServerConnection
from .state import RtspMethod, RtspRole, RtspServerSession, RtspState, new_session_id, next_state
from .transport import Transport, TransportSpec

__all__ = [
    "Announce", "BasicChallenge", "BasicCredentials", "CSeq", "ContentBase", "Describe",
    "DigestChallenge", "DigestCredentials", "DigestVerdict", "GetParameter", "Headers",
    "InterleavedFrame", "NEED_DATA", "Options", "Pause", "Play", "Public", "REASONS", "RangeHeader",
    "Record", "RequestTimeout", "RtpInfo", "RtpInfoEntry", "RtspMethod", "RtspReader", "RtspRequest",
    "RtspRequestEvent", "RtspResponse", "RtspRole", "RtspServerConnection", "RtspServerSession",
    "RtspState", "SessionExpired", "SessionHeader", "SetParameter", "Setup", "Teardown", "Transport",
    "TransportSpec", "authorization_for", "check_digest", "control_after_query", "digest_ha1", "digest_uri_matches",
    "frame_header", "new_session_id", "next_state", "parse_authorization", "parse_challenge",
    "parse_message", "pick_challenge", "verify_digest",
]
