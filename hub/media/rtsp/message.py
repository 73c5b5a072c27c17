"""RTSP messages (RFC 2326 §6-7) and the `$` interleaved frame (§10.12).

Dataclasses that turn into wire bytes with `bytes(msg)`; parsing lives in
`reader.RtspReader`, which both the server and the pulling client drive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ...errors import ProtocolError
from .headers import Headers

RTSP_VERSION = "RTSP/1.0"
INTERLEAVED_MAGIC = 0x24  # "$"
MAX_INTERLEAVED_PAYLOAD = 0xFFFF

_FRAME_HEAD = struct.Struct(">BBH")

REASONS: dict[int, str] = {
    100: "Continue",
    200: "OK",
    201: "Created",
    250: "Low on Storage Space",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    415: "Unsupported Media Type",
    451: "Parameter Not Understood",
    453: "Not Enough Bandwidth",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    456: "Header Field Not Valid for Resource",
    457: "Invalid Range",
    459: "Aggregate Operation Not Allowed",
    460: "Only Aggregate Operation Allowed",
    461: "Unsupported Transport",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "RTSP Version Not Supported",
    551: "Option Not Supported",
}


def _encode(text: str) -> bytes:
    # surrogateescape: bytes we parsed (even invalid UTF-8) go back out unchanged.
    return text.encode("utf-8", "surrogateescape")


def _head_and_body(start_line: str, headers: Headers, body: bytes) -> bytes:
    if body:
        length = str(len(body))
        if headers.get("Content-Length") != length:
            headers = Headers(headers.items())
            headers.set("Content-Length", length)
    out = bytearray(_encode(start_line))
    out += b"\r\n"
    headers.encode_into(out)
    out += b"\r\n"
    out += body
    return bytes(out)


@dataclass
class RtspRequest:
    """`METHOD uri RTSP/1.0` + headers + optional body."""

    method: str
    uri: str
    version: str = RTSP_VERSION
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        """Wire form; Content-Length is set (in place) when there is a body."""
        return _head_and_body(f"{self.method} {self.uri} {self.version}", self.headers, self.body)

    @property
    def cseq(self) -> int | None:
        return _cseq(self.headers)

    @classmethod
    def parse(cls, data: bytes) -> RtspRequest:
        """Parse exactly one complete request (no trailing bytes)."""
        msg = _parse_one(data)
        if not isinstance(msg, RtspRequest):
            raise ProtocolError("expected an RTSP request")
        return msg


@dataclass
class RtspResponse:
    """`RTSP/1.0 status reason` + headers + optional body."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = RTSP_VERSION

    def __post_init__(self) -> None:
        if not self.reason:
            self.reason = REASONS.get(self.status, "Unknown")

    def __bytes__(self) -> bytes:
        return _head_and_body(f"{self.version} {self.status} {self.reason}", self.headers, self.body)

    @property
    def cseq(self) -> int | None:
        return _cseq(self.headers)

    @classmethod
    def parse(cls, data: bytes) -> RtspResponse:
        """Parse exactly one complete response (no trailing bytes)."""
        msg = _parse_one(data)
        if not isinstance(msg, RtspResponse):
            raise ProtocolError("expected an RTSP response")
        return msg


@dataclass(slots=True)
class InterleavedFrame:
    """One RTP/RTCP packet on the RTSP connection: `$`, channel, u16 length."""

    channel: int
    payload: bytes | memoryview

    def __bytes__(self) -> bytes:
        return frame_header(self.channel, len(self.payload)) + bytes(self.payload)


def frame_header(channel: int, length: int) -> bytes:
    """The 4-byte `$` prefix, so senders can write header and payload without
    joining them (writelines / a ring slot)."""
    if not 0 <= channel <= 255:
        raise ValueError(f"interleaved channel {channel} out of range")
    if not 0 <= length <= MAX_INTERLEAVED_PAYLOAD:
        raise ValueError(f"interleaved payload of {length} bytes is too large")
    return _FRAME_HEAD.pack(INTERLEAVED_MAGIC, channel, length)


def _cseq(headers: Headers) -> int | None:
    value = headers.get("CSeq")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        raise ProtocolError(f"bad CSeq {value!r}")
    return int(value)


def _parse_one(data: bytes) -> RtspRequest | RtspResponse:
    from .reader import parse_message

    return parse_message(data)
