"""The RTMP chunk stream (spec 5.3): reader and writer.

A chunk is a basic header (fmt and chunk stream id in 1, 2 or 3 bytes), a
message header whose size the fmt gives (0: 11 bytes with an absolute
timestamp, length, type and little-endian stream id; 1: 7 bytes, a timestamp
delta, length and type; 2: 3 bytes, the delta only; 3: nothing), an optional
4-byte extended timestamp when the 24-bit field reads 0xFFFFFF, and up to
one chunk size of payload.

Two things the spec leaves open, settled as FFmpeg, librtmp and SRS do:

* a fmt 3 chunk that *starts* a message repeats the chunk stream's last
  delta, and after a fmt 0 header that "delta" is the fmt 0 timestamp;
* the extended timestamp is repeated on the fmt 3 *continuation* chunks of
  a message whose header had one (FFmpeg sends and expects it there). Not
  every sender does, so the reader takes the four bytes as a repeat only when
  they equal the header's value, and as payload otherwise.

The reader applies Set Chunk Size and Abort itself (they change how the next
chunk is read) and still returns them. Each limit in ``constants`` applies:
anything over it, or malformed, raises :class:`RtmpProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import (
    COMMAND_TYPES, CONTROL_TYPES, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP, MAX_CHUNK_SIZE,
    MAX_CHUNK_STREAMS, MAX_COMMAND_LEN, MAX_CSID, MAX_MESSAGE_LEN, MAX_PENDING_BYTES, PLAYER_MAX_PENDING,
    MIN_CSID, MSG_ABORT, MSG_SET_CHUNK_SIZE, RtmpProtocolError,
)
from .message import Abort, RtmpMessage, SetChunkSize

_MSG_HEADER_LEN = (11, 7, 3, 0)
_U32 = struct.Struct(">I")
_U32LE = struct.Struct("<I")
#: Compact the read buffer once this much of it has been consumed.
_COMPACT_AT = 64 << 10


@dataclass(slots=True)
class _ChunkStream:
    """What a chunk stream remembers between chunks."""

    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False  # the last message header used the extended field
    ext_value: int = 0
    body: bytearray | None = None  # message under reassembly
    filled: int = 0


def _length_cap(type_id: int, largest: int) -> int:
    if type_id in CONTROL_TYPES:
        return 64
    if type_id in COMMAND_TYPES:
        return min(MAX_COMMAND_LEN, largest)
    return largest


class ChunkReader:
    """Incremental chunk-stream reader: ``feed()`` bytes, then ``next_message()``
    until it returns None."""

    __slots__ = ("_buf", "_pos", "_streams", "_pending", "chunk_size", "consumed", "max_message", "max_pending")

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = 0
        self.chunk_size = chunk_size
        #: Bytes consumed as whole chunks so far.
        self.consumed = 0
        #: The largest message, and declared bytes of unfinished ones, taken
        #: (a player's are smaller: `limit_to_player`).
        self.max_message = MAX_MESSAGE_LEN
        self.max_pending = MAX_PENDING_BYTES

    def limit_to_player(self) -> None:
        """From now on: a player's bounds (commands and control only)."""
        self.max_message = MAX_COMMAND_LEN
        self.max_pending = PLAYER_MAX_PENDING

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed as a whole chunk."""
        return len(self._buf) - self._pos

    @property
    def pending_bytes(self) -> int:
        """Declared length of all messages under reassembly."""
        return self._pending

    @property
    def held_bytes(self) -> int:
        """Bytes of messages under reassembly held so far: what the peer sent
        of them, never their declared length."""
        return sum(len(cs.body) for cs in self._streams.values() if cs.body is not None)

    def next_message(self) -> RtmpMessage | None:
        """Read chunks until one completes a message; None when more bytes are needed."""
        while True:
            msg, done = self._read_chunk()
            if msg is not None:
                return msg
            if not done:
                self._compact()
                return None

    def _compact(self) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0

    def _read_chunk(self) -> tuple[RtmpMessage | None, bool]:
        """Consume one whole chunk if it is all there. Returns (message if the
        chunk completed one, whether a chunk was consumed)."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 1:
            return None, False
        b0 = buf[pos]
        fmt = b0 >> 6
        csid = b0 & 0x3F
        p = pos + 1
        if csid == 0:
            if avail < 2:
                return None, False
            csid = 64 + buf[p]
            p += 1
        elif csid == 1:
            if avail < 3:
                return None, False
            csid = 64 + buf[p] + (buf[p + 1] << 8)
            p += 2
        end = len(buf)
        hlen = _MSG_HEADER_LEN[fmt]
        if end - p < hlen:
            return None, False
        cs = self._streams.get(csid)
        if cs is None:
            if fmt >= 2:
                raise RtmpProtocolError(f"RTMP: first chunk of chunk stream {csid} has fmt {fmt}")
            if len(self._streams) >= MAX_CHUNK_STREAMS:
                raise RtmpProtocolError("RTMP: too many chunk streams")
        continuing = cs is not None and cs.body is not None
        if continuing and fmt != 3:
            raise RtmpProtocolError(
                f"RTMP: fmt {fmt} chunk on chunk stream {csid} in the middle of a message")

        # Parse the header into locals; state changes only once the chunk is whole.
        ts_field = 0
        length = type_id = stream_id = 0
        if fmt <= 2:
            ts_field = buf[p] << 16 | buf[p + 1] << 8 | buf[p + 2]
            if fmt <= 1:
                length = buf[p + 3] << 16 | buf[p + 4] << 8 | buf[p + 5]
                type_id = buf[p + 6]
                if fmt == 0:
                    stream_id = _U32LE.unpack_from(buf, p + 7)[0]
            p += hlen
            extended = ts_field == EXTENDED_TIMESTAMP
            if extended:
                if end - p < 4:
                    return None, False
                ts_field = _U32.unpack_from(buf, p)[0]
                p += 4
        else:
            assert cs is not None
            extended = cs.extended
            ts_field = cs.ext_value if extended else cs.delta
            if extended:
                if end - p < 4:
                    return None, False
                ext = _U32.unpack_from(buf, p)[0]
                if not continuing:
                    ts_field = ext
                    p += 4
                elif ext == cs.ext_value:
                    p += 4  # the repeat FFmpeg sends on continuation chunks

        if continuing:
            assert cs is not None and cs.body is not None
            length = cs.length
            need = min(self.chunk_size, length - cs.filled)
        else:
            if fmt == 3:
                assert cs is not None
                length, type_id, stream_id = cs.length, cs.type_id, cs.stream_id
            elif fmt == 2:
                assert cs is not None
                length, type_id = cs.length, cs.type_id
                stream_id = cs.stream_id
            elif fmt == 1:
                stream_id = cs.stream_id if cs is not None else 0
            if length > _length_cap(type_id, self.max_message):
                raise RtmpProtocolError(f"RTMP: message of type {type_id} is {length} bytes")
            need = min(self.chunk_size, length)
        if end - p < need:
            return None, False

        # Commit.
        if cs is None:
            cs = self._streams[csid] = _ChunkStream()
        if not continuing:
            if fmt == 0:
                timestamp = ts_field
                cs.delta = ts_field
            else:
                timestamp = (cs.timestamp + ts_field) & 0xFFFFFFFF
                cs.delta = ts_field
            cs.timestamp = timestamp
            cs.length, cs.type_id, cs.stream_id = length, type_id, stream_id
            if fmt != 3:
                cs.extended = extended
            cs.ext_value = ts_field if cs.extended else 0
        self._pos = p + need
        self.consumed += self._pos - pos

        if continuing:
            assert cs.body is not None
            cs.body += memoryview(buf)[p:p + need]
            cs.filled += need
            if cs.filled < length:
                return None, True
            body: bytes | bytearray = cs.body
            cs.body = None
            self._pending -= length
        elif need == length:
            body = bytes(buf[p:p + need])
        else:
            if self._pending + length > self.max_pending:
                raise RtmpProtocolError("RTMP: too many bytes of unfinished messages")
            self._pending += length
            # Grown as chunks come, not allocated at the declared length: a
            # peer makes us hold only what it sent (and the cap on declared
            # bytes, MAX_PENDING_BYTES, still applies).
            cs.body = bytearray(memoryview(buf)[p:p + need])
            cs.filled = need
            return None, True
        if self._pos >= _COMPACT_AT:
            self._compact()
        msg = RtmpMessage(csid, cs.type_id, cs.stream_id, cs.timestamp, body)
        if msg.type_id == MSG_SET_CHUNK_SIZE:
            self.chunk_size = SetChunkSize.parse(body).size
        elif msg.type_id == MSG_ABORT:
            self._abort(Abort.parse(body).csid)
        return msg, True

    def _abort(self, csid: int) -> None:
        cs = self._streams.get(csid)
        if cs is not None and cs.body is not None:
            self._pending -= cs.length
            cs.body = None
            cs.filled = 0


# --- writer ---------------------------------------------------------------------


def basic_header(fmt: int, csid: int) -> bytes:
    """The 1-, 2- or 3-byte basic header (the shortest form for ``csid``)."""
    if not MIN_CSID <= csid <= MAX_CSID:
        raise ValueError(f"chunk stream id {csid} out of range")
    if csid < 64:
        return bytes((fmt << 6 | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    rest = csid - 64
    return bytes((fmt << 6 | 1, rest & 0xFF, rest >> 8))


def chunk_header(fmt: int, csid: int, timestamp: int = 0, length: int = 0, type_id: int = 0,
                 stream_id: int = 0) -> bytes:
    """Basic + message header + extended timestamp for one chunk. ``timestamp``
    is the absolute time for fmt 0 and the delta for fmt 1 and 2; for fmt 3 it
    is the extended value to repeat, or anything below 0xFFFFFF for none."""
    ext = timestamp >= EXTENDED_TIMESTAMP
    field = EXTENDED_TIMESTAMP if ext else timestamp
    parts = [basic_header(fmt, csid)]
    if fmt <= 2:
        parts.append(field.to_bytes(3, "big"))
    if fmt <= 1:
        parts.append(length.to_bytes(3, "big"))
        parts.append(bytes((type_id,)))
    if fmt == 0:
        parts.append(_U32LE.pack(stream_id))
    if ext:
        parts.append(_U32.pack(timestamp & 0xFFFFFFFF))
    return b"".join(parts)


def chunk_message(csid: int, type_id: int, stream_id: int, timestamp: int,
                  payload: bytes | bytearray | memoryview, chunk_size: int) -> bytes:
    """A whole message as chunks: a fmt 0 header (absolute timestamp), then fmt 3
    continuation chunks, each repeating an extended timestamp as FFmpeg does."""
    timestamp &= 0xFFFFFFFF
    length = len(payload)
    head = chunk_header(0, csid, timestamp, length, type_id, stream_id)
    if length <= chunk_size:
        return b"".join((head, payload))
    cont = chunk_header(3, csid, timestamp)
    view = memoryview(payload)
    parts: list[bytes | memoryview] = [head, view[:chunk_size]]
    for off in range(chunk_size, length, chunk_size):
        parts.append(cont)
        parts.append(view[off:off + chunk_size])
    return b"".join(parts)


class ChunkWriter:
    """Chunks outgoing messages. By default every message gets a fmt 0 header;
    with ``compress`` it picks fmt 1, 2 or 3 when the chunk stream's previous
    header allows it (what FFmpeg does — the tests' stand-in for a client)."""

    __slots__ = ("chunk_size", "compress", "_last")

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE, compress: bool = False) -> None:
        self.chunk_size = chunk_size
        self.compress = compress
        # csid -> (timestamp, delta, length, type, stream id)
        self._last: dict[int, tuple[int, int, int, int, int]] = {}

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message (in the old size); later messages use ``size``."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ValueError("chunk size out of range")
        out = self.write(2, MSG_SET_CHUNK_SIZE, 0, 0, bytes(SetChunkSize(size)))
        self.chunk_size = size
        return out

    def write(self, csid: int, type_id: int, stream_id: int, timestamp: int,
              payload: bytes | bytearray | memoryview, fmt: int | None = None) -> bytes:
        timestamp &= 0xFFFFFFFF
        length = len(payload)
        last = self._last.get(csid)
        if fmt is None:
            fmt = 0
            if self.compress and last is not None and timestamp >= last[0]:
                delta = timestamp - last[0]
                if stream_id == last[4]:
                    fmt = 1
                    if length == last[2] and type_id == last[3]:
                        fmt = 3 if delta == last[1] else 2
        if fmt == 0:
            field = timestamp
        else:
            if last is None:
                raise ValueError("fmt 1-3 need an earlier header on the chunk stream")
            field = last[1] if fmt == 3 else (timestamp - last[0]) & 0xFFFFFFFF
            timestamp = (last[0] + field) & 0xFFFFFFFF
        self._last[csid] = (timestamp, field, length, type_id, stream_id)
        first = chunk_header(fmt, csid, field, length, type_id, stream_id)
        if length <= self.chunk_size:
            return b"".join((first, payload))
        cont = chunk_header(3, csid, field)
        view = memoryview(payload)
        size = self.chunk_size
        parts: list[bytes | memoryview] = [first, view[:size]]
        for off in range(size, length, size):
            parts.append(cont)
            parts.append(view[off:off + size])
        return b"".join(parts)
