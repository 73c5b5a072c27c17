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
from collections.abc import Iterator
from typing import Literal, TypeAlias

from ...errors import ProtocolError
from .message import (MAX_BODY, MAX_HEAD, MAX_HEADERS, MAX_START_LINE, InterleavedFrame, Message, RtspRequest,
                      RtspResponse, content_length, head_end, parse_head, parse_message)

__all__ = ["MAX_BODY", "MAX_HEAD", "MAX_HEADERS", "MAX_START_LINE", "NEED_DATA", "Event", "Message",
           "RtspReader", "parse_message"]


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Literal[_NeedData.NEED_DATA] = _NeedData.NEED_DATA
"""Returned by `next_event` when no complete event is buffered yet."""

Event: TypeAlias = "RtspRequest | RtspResponse | InterleavedFrame | Literal[_NeedData.NEED_DATA]"


class RtspReader:
    """Feed bytes with `feed`, drain with `next_event` until NEED_DATA."""

    __slots__ = ("_buf", "_pos", "_scan", "_pending", "_head_raw", "_body_len", "_error", "last_raw",
                 "max_start_line", "max_head", "max_headers", "max_body")

    def __init__(self, *, max_start_line: int = MAX_START_LINE, max_head: int = MAX_HEAD,
                 max_headers: int = MAX_HEADERS, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed bytes
        self._scan = 0  # where the end-of-head search resumes
        self._pending: Message | None = None  # head parsed, body not yet here
        self._head_raw = b""  # the pending message's head as received
        self._body_len = 0
        self._error: ProtocolError | None = None
        #: The last message returned, exactly as received (head and body;
        #: line ends skipped before it are not part of it).
        self.last_raw = b""
        self.max_start_line = max_start_line
        self.max_head = max_head
        self.max_headers = max_headers
        self.max_body = max_body

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events."""
        return len(self._buf) - self._pos + len(self._head_raw)

    @property
    def in_message(self) -> bool:
        """Whether part of a message (not of a `$` frame) is buffered: the
        state a deadline on unfinished requests watches."""
        if self._pending is not None:
            return True
        buf = self._buf
        pos = self._pos
        n = len(buf)
        while pos < n and (buf[pos] == 0x0D or buf[pos] == 0x0A):
            pos += 1
        return pos < n and buf[pos] != 0x24

    def take_buffered(self) -> bytes:
        """Hand over the bytes not yet returned as events and forget them.

        For moving a connection to another owner right after an event (the
        front hands a publisher to its shard after ANNOUNCE): those bytes,
        replayed first, are exactly what the new owner has not seen, a
        half-read message included."""
        data = self._head_raw + bytes(self._buf[self._pos:])
        self._buf.clear()
        self._pos = self._scan = 0
        self._pending = None
        self._head_raw = b""
        self._body_len = 0
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

    def next_event(self, frames_only: bool = False) -> Event:
        """The next request, response or interleaved frame, or NEED_DATA.

        With `frames_only`, a message that comes next is left unread (and
        NEED_DATA returned): a server answering one request at a time keeps
        later requests as bytes while `$` frames still flow.

        Raises ProtocolError on a malformed or oversized message; the reader
        is then unusable (the connection is out of sync) and raises again.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._next(frames_only)
        except ProtocolError as exc:
            self._error = exc
            raise

    def _next(self, frames_only: bool) -> Event:
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if self._pending is not None:
            return NEED_DATA if frames_only else self._take_body(pos, n)
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
            return self._next(frames_only)
        if frames_only:
            return NEED_DATA
        if not 0x41 <= first <= 0x5A:  # a method or "RTSP/" starts with A-Z
            raise ProtocolError(f"unexpected byte 0x{first:02x} at message start")
        return self._take_head(pos, n)

    def _take_head(self, start: int, n: int) -> Event:
        buf = self._buf
        scan = max(self._scan, start)
        limit = min(n, start + self.max_head + 3)
        found = head_end(buf, scan, limit)
        if found is None:
            if n - start > self.max_head:
                raise ProtocolError("RTSP header block too long")
            if n - start > self.max_start_line and buf.find(b"\n", start, start + self.max_start_line + 1) < 0:
                raise ProtocolError("RTSP start line too long")
            self._scan = max(start, n - 2)
            return NEED_DATA
        end, body_start = found
        if end - start > self.max_head:
            raise ProtocolError("RTSP header block too long")
        self._scan = 0
        msg = parse_head(bytes(buf[start:end]).decode("utf-8", "surrogateescape"),
                         max_start_line=self.max_start_line, max_headers=self.max_headers)
        self._body_len = content_length(msg.headers, self.max_body)
        head_raw = bytes(buf[start:body_start])
        self._pos = body_start
        if self._body_len:
            self._pending = msg
            self._head_raw = head_raw
            return self._take_body(body_start, n)
        self.last_raw = head_raw
        return msg

    def _take_body(self, pos: int, n: int) -> Event:
        length = self._body_len
        if n - pos < length:
            return NEED_DATA
        msg = self._pending
        assert msg is not None
        msg.body = bytes(self._buf[pos:pos + length])
        self.last_raw = self._head_raw + msg.body
        self._pos = pos + length
        self._pending = None
        self._head_raw = b""
        self._body_len = 0
        return msg
