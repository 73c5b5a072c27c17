"""Incremental RTSP reader: bytes in, requests / responses / `$` frames out.

One reader per connection, used by the server and by the pulling client
alike. It never blocks and never buffers without bound: the start line, the
header block, the header count and the body are capped, and anything over a
cap or unparsable raises ProtocolError (the caller answers 400 and closes).

Interleaved RTP is the hot path (a publisher sends thousands of small frames
a second), so frames are cut from one bytearray with a moving offset, header
searches resume where they stopped, and the buffer is compacted at most once
per `feed`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import Literal, TypeAlias

from ...errors import ProtocolError
from .headers import Headers
from .message import RtspRequest, RtspResponse, InterleavedFrame

MAX_START_LINE = 4096  # request line / status line, URI included
MAX_HEAD = 16384  # start line + header block
MAX_HEADERS = 64
MAX_BODY = 65536


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Literal[_NeedData.NEED_DATA] = _NeedData.NEED_DATA
"""Returned by `next_event` when no complete event is buffered yet."""

Message: TypeAlias = "RtspRequest | RtspResponse"
Event: TypeAlias = "RtspRequest | RtspResponse | InterleavedFrame | Literal[_NeedData.NEED_DATA]"

_METHOD = re.compile(r"[A-Z][A-Z0-9_\-]*\Z")
_VERSION = re.compile(r"RTSP/[0-9]\.[0-9]\Z")
_STATUS = re.compile(r"[1-9][0-9][0-9]\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_DIGITS = re.compile(r"[0-9]{1,10}\Z")


class RtspReader:
    """Feed bytes with `feed`, drain with `next_event` until NEED_DATA."""

    __slots__ = ("_buf", "_pos", "_scan", "_pending", "_body_len", "_error",
                 "max_start_line", "max_head", "max_headers", "max_body")

    def __init__(self, *, max_start_line: int = MAX_START_LINE, max_head: int = MAX_HEAD,
                 max_headers: int = MAX_HEADERS, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed bytes
        self._scan = 0  # where the end-of-head search resumes
        self._pending: Message | None = None  # head parsed, body not yet here
        self._body_len = 0
        self._error: ProtocolError | None = None
        self.max_start_line = max_start_line
        self.max_head = max_head
        self.max_headers = max_headers
        self.max_body = max_body

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events."""
        return len(self._buf) - self._pos

    def take_buffered(self) -> bytes:
        """Hand over the bytes not yet returned as events and forget them.

        For moving a connection to another owner right after an event (the
        front hands a publisher to its shard after ANNOUNCE): those bytes,
        replayed first, are exactly what the new owner has not seen."""
        if self._pending is not None:
            raise ProtocolError("a message is half read")
        data = bytes(self._buf[self._pos:])
        self._buf.clear()
        self._pos = self._scan = 0
        return data

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer more bytes; drop what earlier events consumed."""
        pos = self._pos
        if pos:
            # One memmove of at most one partial message per feed.
            del self._buf[:pos]
            self._scan = max(0, self._scan - pos)
            self._pos = 0
        self._buf += data

    def events(self) -> Iterator[RtspRequest | RtspResponse | InterleavedFrame]:
        """Every complete event buffered now."""
        while True:
            event = self.next_event()
            if event is NEED_DATA:
                return
            yield event

    def next_event(self) -> Event:
        """The next request, response or interleaved frame, or NEED_DATA.

        Raises ProtocolError on a malformed or oversized message; the reader
        is then unusable (the connection is out of sync) and raises again.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except ProtocolError as exc:
            self._error = exc
            raise

    def _next(self) -> Event:
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if self._pending is not None:
            return self._take_body(pos, n)
        if pos >= n:
            return NEED_DATA
        first = buf[pos]
        if first == 0x24:  # "$": interleaved frame
            if n - pos < 4:
                return NEED_DATA
            end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
            if end > n:
                return NEED_DATA
            self._pos = end
            # bytes(bytearray slice) measured faster than a memoryview slice
            # for RTP-sized payloads, and leaves no export pinning the buffer.
            return InterleavedFrame(buf[pos + 1], bytes(buf[pos + 4:end]))
        # Stray line ends between messages (keep-alive CRLFs) are skipped.
        while first == 0x0D or first == 0x0A:
            pos += 1
            if pos >= n:
                self._pos = pos
                return NEED_DATA
            first = buf[pos]
        self._pos = pos
        if first == 0x24:
            return self._next()
        if not 0x41 <= first <= 0x5A:  # a method or "RTSP/" starts with A-Z
            raise ProtocolError(f"unexpected byte 0x{first:02x} at message start")
        return self._take_head(pos, n)

    def _take_head(self, start: int, n: int) -> Event:
        buf = self._buf
        scan = max(self._scan, start)
        limit = min(n, start + self.max_head + 3)
        a = buf.find(b"\n\r\n", scan, limit)
        b = buf.find(b"\n\n", scan, limit)
        if a < 0 and b < 0:
            if n - start > self.max_head:
                raise ProtocolError("RTSP header block too long")
            if n - start > self.max_start_line and buf.find(b"\n", start, start + self.max_start_line + 1) < 0:
                raise ProtocolError("RTSP start line too long")
            self._scan = max(start, n - 2)
            return NEED_DATA
        if a >= 0 and (b < 0 or a < b):
            head_end, body_start = a, a + 3
        else:
            head_end, body_start = b, b + 2
        if head_end - start > self.max_head:
            raise ProtocolError("RTSP header block too long")
        self._scan = 0
        msg = self._parse_head(bytes(buf[start:head_end]).decode("utf-8", "surrogateescape"))
        self._pos = body_start
        if self._body_len:
            self._pending = msg
            return self._take_body(body_start, n)
        return msg

    def _take_body(self, pos: int, n: int) -> Event:
        length = self._body_len
        if n - pos < length:
            return NEED_DATA
        msg = self._pending
        assert msg is not None
        msg.body = bytes(self._buf[pos:pos + length])
        self._pos = pos + length
        self._pending = None
        self._body_len = 0
        return msg

    def _parse_head(self, text: str) -> Message:
        lines = text.split("\n")
        start = lines[0].removesuffix("\r")
        if len(start) > self.max_start_line:
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
            if len(items) > self.max_headers:
                raise ProtocolError("too many RTSP headers")
        msg.headers = Headers(items)
        self._body_len = self._content_length(msg.headers)
        return msg

    def _content_length(self, headers: Headers) -> int:
        values = headers.get_all("Content-Length")
        if not values:
            return 0
        if any(v != values[0] for v in values):
            raise ProtocolError("conflicting Content-Length headers")
        if not _DIGITS.match(values[0]):
            raise ProtocolError(f"bad Content-Length {values[0][:20]!r}")
        length = int(values[0])
        if length > self.max_body:
            raise ProtocolError(f"RTSP body of {length} bytes is over the {self.max_body} cap")
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


def parse_message(data: bytes) -> Message:
    """Parse exactly one complete message (no trailing bytes)."""
    reader = RtspReader()
    reader.feed(data)
    msg = reader.next_event()
    if msg is NEED_DATA:
        raise ProtocolError("incomplete RTSP message")
    if isinstance(msg, InterleavedFrame):
        raise ProtocolError("expected an RTSP message, got an interleaved frame")
    if reader.buffered:
        raise ProtocolError("trailing bytes after the RTSP message")
    return msg
