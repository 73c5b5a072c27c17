"""RTSP messages (RFC 2326 §6-7) and the `$` interleaved frame (§10.12).

Dataclasses that turn into wire bytes with `bytes(msg)`, the parsing of one
message head (start line and header fields) and of one whole message.
Incremental framing of a byte stream (where a message ends, caps on what is
still incomplete) is `reader.RtspReader`'s, which imports this module and
never the other way round.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import TypeAlias

from ...errors import ProtocolError
from .headers import Headers

RTSP_VERSION = "RTSP/1.0"
INTERLEAVED_MAGIC = 0x24  # "$"
MAX_INTERLEAVED_PAYLOAD = 0xFFFF

MAX_START_LINE = 4096  # request line / status line, URI included
MAX_HEAD = 16384  # start line + header block
MAX_HEADERS = 64
MAX_BODY = 65536

_METHOD = re.compile(r"[A-Z][A-Z0-9_\-]*\Z")
_VERSION = re.compile(r"RTSP/[0-9]\.[0-9]\Z")
_STATUS = re.compile(r"[1-9][0-9][0-9]\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_DIGITS = re.compile(r"[0-9]{1,10}\Z")

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


def _parse_one(data: bytes) -> Message:
    return parse_message(data)


Message: TypeAlias = "RtspRequest | RtspResponse"


def head_end(buf: bytes | bytearray, start: int, end: int) -> tuple[int, int] | None:
    """Where the head that starts at `start` ends, searching up to `end`:
    (end of the header block, start of the body), or None. A blank line is
    CRLF CRLF or bare LF LF (some cameras); the first one wins."""
    a = buf.find(b"\n\r\n", start, end)
    b = buf.find(b"\n\n", start, end)
    if a < 0 and b < 0:
        return None
    if a >= 0 and (b < 0 or a < b):
        return a, a + 3
    return b, b + 2


def parse_head(text: str, *, max_start_line: int = MAX_START_LINE,
               max_headers: int = MAX_HEADERS) -> Message:
    """A start line and its header lines (no blank line, no body); the
    message comes back with an empty body."""
    lines = text.split("\n")
    start = lines[0].removesuffix("\r")
    if len(start) > max_start_line:
        raise ProtocolError("RTSP start line too long")
    msg = _parse_start_line(start)
    items: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.removesuffix("\r")
        if line[:1] in (" ", "\t"):
            # Obsolete line folding: continue the previous value.
            if not items:
                raise ProtocolError("continuation line before any header")
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise ProtocolError(f"malformed RTSP header line {line[:80]!r}")
        items.append((name, value.strip(" \t")))
        if len(items) > max_headers:
            raise ProtocolError("too many RTSP headers")
    msg.headers = Headers(items)
    return msg


def content_length(headers: Headers, max_body: int = MAX_BODY) -> int:
    """The body length a message head declares (0 without the header)."""
    values = headers.get_all("Content-Length")
    if not values:
        return 0
    if any(v != values[0] for v in values):
        raise ProtocolError("conflicting Content-Length headers")
    if not _DIGITS.match(values[0]):
        raise ProtocolError(f"bad Content-Length {values[0][:20]!r}")
    length = int(values[0])
    if length > max_body:
        raise ProtocolError(f"RTSP body of {length} bytes is over the {max_body} cap")
    return length


def _parse_start_line(line: str) -> Message:
    if line.startswith("RTSP/"):
        parts = line.split(" ", 2)
        if len(parts) < 2 or not _VERSION.match(parts[0]) or not _STATUS.match(parts[1]):
            raise ProtocolError(f"malformed RTSP status line {line[:80]!r}")
        reason = parts[2] if len(parts) == 3 else ""
        return RtspResponse(int(parts[1]), reason, version=parts[0])
    parts = line.split(" ")
    if len(parts) != 3 or not _METHOD.match(parts[0]) or not parts[1] or not _VERSION.match(parts[2]):
        raise ProtocolError(f"malformed RTSP request line {line[:80]!r}")
    return RtspRequest(parts[0], parts[1], parts[2])


def parse_message(data: bytes | bytearray) -> Message:
    """Parse exactly one complete message (no trailing bytes), under the
    same caps as the incremental reader."""
    start = 0
    while start < len(data) and data[start] in (0x0D, 0x0A):
        start += 1  # stray line ends before a message
    if data[start:start + 1] == b"$":
        raise ProtocolError("expected an RTSP message, got an interleaved frame")
    if start < len(data) and not 0x41 <= data[start] <= 0x5A:
        raise ProtocolError(f"unexpected byte 0x{data[start]:02x} at message start")
    found = head_end(data, start, min(len(data), start + MAX_HEAD + 3))
    if found is None:
        if len(data) - start > MAX_HEAD:
            raise ProtocolError("RTSP header block too long")
        raise ProtocolError("incomplete RTSP message")
    end, body_start = found
    if end - start > MAX_HEAD:
        raise ProtocolError("RTSP header block too long")
    msg = parse_head(bytes(data[start:end]).decode("utf-8", "surrogateescape"))
    length = content_length(msg.headers)
    if len(data) - body_start < length:
        raise ProtocolError("incomplete RTSP message")
    if len(data) - body_start > length:
        raise ProtocolError("trailing bytes after the RTSP message")
    msg.body = bytes(data[body_start:])
    return msg


_CSEQ_LINE = re.compile(rb"(?im)^cseq[ \t]*:[ \t]*([0-9]{1,10})[ \t]*\r?$")


def salvage_cseq(data: bytes) -> int | None:
    """The CSeq of a request that does not parse, if a line says it
    plainly: the client can then match the 400 to what it sent."""
    m = _CSEQ_LINE.search(data[:MAX_HEAD])
    value = int(m.group(1)) if m else None
    return value if value is not None and value <= 0xFFFFFFFF else None
