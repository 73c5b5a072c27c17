"""Sans-IO WSP: the Streamedian html5 RTSP player's protocol over WebSocket.

The player opens two WebSockets: `control` carries text messages

    WSP/1.1 VERB\\r\\nname: value\\r\\n...\\r\\n\\r\\n<payload>

(INIT, WRAP with an RTSP request as payload, GET_INFO, SWITCH) answered by
`WSP/1.1 200 OK\\r\\nseq: N\\r\\n...\\r\\n\\r\\n<payload>`; `data` sends one
JOIN and then receives RTP/RTCP as binary messages, one `$`-interleaved
packet per message. This module parses and formats those messages and cuts an
interleaved blob (several `$` packets, as the RTP fan-out writes them) into
one WebSocket binary frame per packet. No I/O.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from ..errors import ProtocolError
from .websocket import BINARY, encode_header

PROTO = "WSP/1.1"
#: A WSP message is a small text; a WRAP payload is one RTSP request.
MAX_MESSAGE = 64 * 1024
MAX_HEADERS = 32

VERBS = frozenset({"INIT", "WRAP", "JOIN", "GET_INFO", "SWITCH"})

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error"}

_VERB_RE = re.compile(r"[A-Z][A-Z0-9_]{0,31}\Z")
_SEQ_RE = re.compile(rb"(?im)^[ \t]*seq[ \t]*:[ \t]*([0-9]{1,18})[ \t]*\r?$")
_LEN = struct.Struct(">H")


class WspError(ProtocolError):
    """A WSP message that does not parse (answered 400)."""


def _split(data: bytes | bytearray | memoryview) -> tuple[str, list[tuple[str, str]], bytes]:
    raw = bytes(data)
    if len(raw) > MAX_MESSAGE:
        raise WspError("WSP message too large")
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise WspError("WSP message without an end of headers")
    try:
        head = raw[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise WspError("WSP head is not UTF-8") from None
    lines = head.split("\r\n")
    if len(lines) - 1 > MAX_HEADERS:
        raise WspError("too many WSP headers")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or " " in name:
            raise WspError(f"malformed WSP header line {line[:40]!r}")
        headers.append((name, value.strip()))
    return lines[0], headers, raw[end + 4:]


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


def _head_bytes(first: str, headers: list[tuple[str, str]], payload: bytes) -> bytes:
    lines = [first]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return b"".join(("\r\n".join(lines).encode("utf-8"), b"\r\n\r\n", payload))


@dataclass
class WspRequest:
    """One request from the player (control socket, or JOIN on the data socket)."""

    verb: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload: bytes = b""

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> WspRequest:
        first, headers, payload = _split(data)
        proto, sp, verb = first.partition(" ")
        if proto != PROTO or not sp:
            raise WspError(f"not a WSP request line: {first[:40]!r}")
        if not _VERB_RE.match(verb):
            raise WspError(f"bad WSP verb {verb[:40]!r}")
        return cls(verb, headers, payload)

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)

    @property
    def seq(self) -> str | None:
        """The request's sequence number, echoed in the reply (digits only)."""
        v = self.header("seq")
        return v if v is not None and v.isdigit() and len(v) <= 18 else None

    def __bytes__(self) -> bytes:
        return _head_bytes(f"{PROTO} {self.verb}", self.headers, self.payload)


@dataclass
class WspResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload: bytes = b""
    reason: str = ""

    @classmethod
    def reply(cls, status: int, seq: str | None, payload: bytes = b"",
              **extra: str) -> WspResponse:
        """A reply to a request: `seq` first (as ipchub), then `extra` headers."""
        headers = [] if seq is None else [("seq", seq)]
        headers.extend(extra.items())
        return cls(status, headers, payload)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> WspResponse:
        first, headers, payload = _split(data)
        parts = first.split(" ", 2)
        if len(parts) < 2 or parts[0] != PROTO or len(parts[1]) != 3 or not parts[1].isdigit():
            raise WspError(f"not a WSP status line: {first[:40]!r}")
        return cls(int(parts[1]), headers, payload, parts[2] if len(parts) == 3 else "")

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)

    def __bytes__(self) -> bytes:
        reason = self.reason or REASONS.get(self.status, "Error")
        return _head_bytes(f"{PROTO} {self.status} {reason}", self.headers, self.payload)


def salvage_seq(data: bytes | bytearray | memoryview) -> str | None:
    """The `seq:` of a message that did not parse, so its 400 can still be matched."""
    m = _SEQ_RE.search(bytes(data[:MAX_MESSAGE]))
    return m.group(1).decode("ascii") if m else None


def split_interleaved(blob: bytes | bytearray | memoryview) -> list[memoryview]:
    """Cut `$`-interleaved bytes into whole packets (header included).

    The RTP fan-out only ever writes whole packets, so a blob that does not
    walk cleanly is a programming error upstream: raises ProtocolError."""
    mv = memoryview(blob)
    out: list[memoryview] = []
    pos, n = 0, len(mv)
    while pos < n:
        if n - pos < 4 or mv[pos] != 0x24:
            raise ProtocolError("interleaved blob out of step")
        end = pos + 4 + _LEN.unpack_from(mv, pos + 2)[0]
        if end > n:
            raise ProtocolError("interleaved blob cut short")
        out.append(mv[pos:end])
        pos = end
    return out


def ws_frames_for_interleaved(blob: bytes | bytearray | memoryview) -> bytes:
    """One unmasked WebSocket binary frame per `$` packet of `blob`, joined."""
    parts: list[bytes | memoryview] = []
    for pkt in split_interleaved(blob):
        parts.append(encode_header(len(pkt), BINARY))
        parts.append(pkt)
    return b"".join(parts)


class InterleavedFramer:
    """`ws_frames_for_interleaved` with a one-entry cache.

    Every WebSocket player of a stream with the same channels is handed the
    very same blob object in one fan-out turn; framing it once serves them
    all. The cache holds a reference, so an identical object is the same bytes.
    """

    __slots__ = ("_blob", "_framed")

    def __init__(self) -> None:
        self._blob: object = None
        self._framed = b""

    def frame(self, blob: bytes | bytearray | memoryview) -> bytes:
        if blob is self._blob and isinstance(blob, bytes):
            return self._framed
        framed = ws_frames_for_interleaved(blob)
        if isinstance(blob, bytes):
            self._blob, self._framed = blob, framed
        return framed
