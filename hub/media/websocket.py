"""Sans-IO WebSocket (RFC 6455), server side only.

Used by WS-FLV and RTSP-over-WebSocket. The server's frames are unmasked, so
a frame is just a header followed by the payload: :func:`encode_header` lets
the caller write ``header`` then the payload bytes already shared by every
player, without copying them into a frame. :class:`WsFrameDecoder` takes the
client's (masked) frames apart, joins fragments, and enforces the protocol
rules; a violation raises :class:`WsProtocolError` carrying the close code to
send before closing.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from typing import Union

from hub.errors import HubError, PayloadTooLarge, ProtocolError

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

#: Default cap on one (reassembled) client message. Clients of a media server
#: send small control messages; a megabyte is plenty.
MAX_MESSAGE = 1 << 20
#: Frames one message may come in. Fragments are joined as they come (a
#: message holds its payload's bytes, never a per-frame cost), and a message
#: of endless empty fragments ends here.
MAX_FRAGMENTS = 1024

_DATA_OPCODES = frozenset((TEXT, BINARY))
_CONTROL_OPCODES = frozenset((CLOSE, PING, PONG))
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


class WsProtocolError(ProtocolError):
    """A client broke RFC 6455; ``close_code`` is what to send in the Close frame."""

    def __init__(self, message: str, close_code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.close_code = close_code


CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011


def close_code_for(exc: BaseException | None) -> int:
    """The one mapping from why a WebSocket ends to its Close code: none
    (a normal end) 1000; a frame-level violation its own code; a message over
    a cap 1009; any other bad input 1002; a refusal (auth, state) 1008; our
    own failure 1011."""
    if exc is None:
        return CLOSE_NORMAL
    if isinstance(exc, WsProtocolError):
        return exc.close_code
    if isinstance(exc, PayloadTooLarge):
        return CLOSE_TOO_BIG
    if isinstance(exc, ProtocolError):
        return CLOSE_PROTOCOL_ERROR
    if isinstance(exc, HubError) and exc.http_status < 500:
        return CLOSE_POLICY
    return CLOSE_INTERNAL


def accept_key(sec_websocket_key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    digest = hashlib.sha1((sec_websocket_key.strip() + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def encode_header(length: int, opcode: int = BINARY, fin: bool = True) -> bytes:
    """Header of an unmasked (server) frame carrying ``length`` payload bytes."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes((first, length))
    if length <= 0xFFFF:
        return bytes((first, 126)) + _U16.pack(length)
    return bytes((first, 127)) + _U64.pack(length)


def encode_frame(payload: bytes | bytearray | memoryview, opcode: int = BINARY,
                 fin: bool = True) -> bytes:
    """A whole unmasked frame (for small messages; big shared payloads should be
    written as ``encode_header`` + payload)."""
    return b"".join((encode_header(len(payload), opcode, fin), payload))


def encode_close(code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
    """A Close frame; the reason is truncated to fit the 125-byte control limit."""
    body = _U16.pack(code) + reason.encode("utf-8")[:123]
    return encode_frame(body, CLOSE)


def mask(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte masking key (masking and unmasking are the same).

    Done as one big-integer XOR: orders of magnitude faster than a Python loop."""
    n = len(payload)
    if n == 0:
        return b""
    reps = key * (n // 4 + 1)
    value = int.from_bytes(payload, "big") ^ int.from_bytes(reps[:n], "big")
    return value.to_bytes(n, "big")


@dataclass(frozen=True, slots=True)
class WsMessage:
    """A complete text or binary message (fragments already joined)."""

    opcode: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass(frozen=True, slots=True)
class WsPing:
    data: bytes


@dataclass(frozen=True, slots=True)
class WsPong:
    data: bytes


@dataclass(frozen=True, slots=True)
class WsClose:
    code: int  # 1005 when the frame had no body
    reason: str


WsEvent = Union[WsMessage, WsPing, WsPong, WsClose]


def _valid_close_code(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class WsFrameDecoder:
    """Incremental decoder of client frames: ``feed()`` bytes, then call
    ``next_event()`` until it returns None.

    Client frames must be masked, RSV bits zero (no extensions negotiated),
    control frames unfragmented and at most 125 bytes; a message may not
    exceed ``max_message`` bytes (close code 1009) and a text message must be
    UTF-8 (1007). After a Close event no further frames are decoded.
    """

    __slots__ = ("_buf", "_pos", "_frag_opcode", "_frag", "_frags", "max_message", "closed")

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._frag_opcode: int | None = None
        self._frag = bytearray()
        self._frags = 0
        self.max_message = max_message
        self.closed = False

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def next_event(self) -> WsEvent | None:
        while not self.closed:
            frame = self._next_frame()
            if frame is None:
                return None
            event = self._handle(*frame)
            if event is not None:
                return event
        return None

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail < 2:
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        fin, opcode = bool(b0 & 0x80), b0 & 0x0F
        if b0 & 0x70:
            raise WsProtocolError("reserved bits set without an extension")
        if opcode not in _DATA_OPCODES and opcode not in _CONTROL_OPCODES \
                and opcode != CONTINUATION:
            raise WsProtocolError(f"unknown opcode {opcode}")
        if not b1 & 0x80:
            raise WsProtocolError("client frame not masked")
        length = b1 & 0x7F
        head = 2
        if opcode in _CONTROL_OPCODES:
            if not fin:
                raise WsProtocolError("fragmented control frame")
            if length > 125:
                raise WsProtocolError("control frame longer than 125 bytes")
        if length == 126:
            if avail < 4:
                return None
            length = _U16.unpack_from(buf, pos + 2)[0]
            head = 4
        elif length == 127:
            if avail < 10:
                return None
            length = _U64.unpack_from(buf, pos + 2)[0]
            if length >> 63:
                raise WsProtocolError("64-bit length with the top bit set")
            head = 10
        if opcode not in _CONTROL_OPCODES and len(self._frag) + length > self.max_message:
            raise WsProtocolError("message too big", CLOSE_TOO_BIG)
        end = head + 4 + length
        if avail < end:
            return None
        key = bytes(buf[pos + head:pos + head + 4])
        payload = mask(memoryview(buf)[pos + head + 4:pos + end], key)
        self._pos = pos + end
        return fin, opcode, payload

    def _handle(self, fin: bool, opcode: int, payload: bytes) -> WsEvent | None:
        if opcode == PING:
            return WsPing(payload)
        if opcode == PONG:
            return WsPong(payload)
        if opcode == CLOSE:
            return self._close(payload)
        if opcode == CONTINUATION:
            if self._frag_opcode is None:
                raise WsProtocolError("continuation without a message")
            msg_opcode = self._frag_opcode
        else:
            if self._frag_opcode is not None:
                raise WsProtocolError("new message before the last one finished")
            msg_opcode = opcode
        if not fin:
            self._frags += 1
            if self._frags > MAX_FRAGMENTS:
                raise WsProtocolError("message in too many fragments", CLOSE_TOO_BIG)
            self._frag_opcode = msg_opcode
            self._frag += payload
            return None
        if self._frag_opcode is not None:
            self._frag += payload
            payload = bytes(self._frag)
            self._frag.clear()
            self._frags = 0
            self._frag_opcode = None
        if msg_opcode == TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WsProtocolError("text message is not UTF-8", CLOSE_INVALID_DATA) from exc
        return WsMessage(msg_opcode, payload)

    def _close(self, payload: bytes) -> WsClose:
        self.closed = True
        if not payload:
            return WsClose(CLOSE_NO_STATUS, "")
        if len(payload) == 1:
            raise WsProtocolError("close frame with a 1-byte body")
        code = _U16.unpack_from(payload)[0]
        if not _valid_close_code(code):
            raise WsProtocolError(f"invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WsProtocolError("close reason is not UTF-8", CLOSE_INVALID_DATA) from exc
        return WsClose(code, reason)
