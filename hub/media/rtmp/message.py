"""RTMP messages and the protocol control messages (spec 5.4, 7.1.7).

An :class:`RtmpMessage` is what the chunk stream carries: a type, a message
stream id, a 32-bit millisecond timestamp and a body. The control messages
are one dataclass each, ``parse(body)`` beside ``__bytes__`` (the body), with
their exact lengths checked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import (
    MSG_ABORT, MSG_ACK, MSG_SET_CHUNK_SIZE, MSG_SET_PEER_BANDWIDTH, MSG_USER_CONTROL,
    MSG_WINDOW_ACK_SIZE, MAX_CHUNK_SIZE, MAX_CSID, MIN_CHUNK_SIZE, MIN_CSID, UC_PING_REQUEST,
    UC_PING_RESPONSE, UC_SET_BUFFER_LENGTH, UC_STREAM_BEGIN, UC_STREAM_EOF,
    RtmpProtocolError,
)

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_BW = struct.Struct(">IB")


@dataclass(frozen=True, slots=True)
class RtmpMessage:
    """One reassembled message. ``body`` is never shared with the reader's
    buffer, so it may be kept (media bodies are handed out as views of it)."""

    csid: int
    type_id: int
    stream_id: int
    timestamp: int
    body: bytes | bytearray


def _exact(body: bytes | bytearray, n: int, what: str) -> None:
    if len(body) != n:
        raise RtmpProtocolError(f"RTMP {what}: body is {len(body)} bytes, not {n}")


@dataclass(frozen=True, slots=True)
class SetChunkSize:
    size: int
    type_id = MSG_SET_CHUNK_SIZE

    @classmethod
    def parse(cls, body: bytes | bytearray) -> SetChunkSize:
        _exact(body, 4, "Set Chunk Size")
        size = _U32.unpack(body)[0]
        if size & 0x80000000 or size == 0:
            raise RtmpProtocolError(f"RTMP Set Chunk Size: invalid size {size}")
        if size > MAX_CHUNK_SIZE:
            raise RtmpProtocolError(f"RTMP Set Chunk Size: {size} over our limit {MAX_CHUNK_SIZE}")
        if size < MIN_CHUNK_SIZE:
            raise RtmpProtocolError(f"RTMP Set Chunk Size: {size} under our limit {MIN_CHUNK_SIZE}")
        return cls(size)

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size)


@dataclass(frozen=True, slots=True)
class Abort:
    csid: int
    type_id = MSG_ABORT

    @classmethod
    def parse(cls, body: bytes | bytearray) -> Abort:
        _exact(body, 4, "Abort")
        csid = _U32.unpack(body)[0]
        if not MIN_CSID <= csid <= MAX_CSID:
            raise RtmpProtocolError(f"RTMP Abort: bad chunk stream id {csid}")
        return cls(csid)

    def __bytes__(self) -> bytes:
        return _U32.pack(self.csid)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    sequence: int  # bytes received so far, modulo 2**32
    type_id = MSG_ACK

    @classmethod
    def parse(cls, body: bytes | bytearray) -> Acknowledgement:
        _exact(body, 4, "Acknowledgement")
        return cls(_U32.unpack(body)[0])

    def __bytes__(self) -> bytes:
        return _U32.pack(self.sequence & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class WindowAckSize:
    size: int
    type_id = MSG_WINDOW_ACK_SIZE

    @classmethod
    def parse(cls, body: bytes | bytearray) -> WindowAckSize:
        _exact(body, 4, "Window Acknowledgement Size")
        size = _U32.unpack(body)[0]
        if size == 0:
            raise RtmpProtocolError("RTMP Window Acknowledgement Size of 0")
        return cls(size)

    def __bytes__(self) -> bytes:
        return _U32.pack(self.size)


@dataclass(frozen=True, slots=True)
class SetPeerBandwidth:
    size: int
    limit_type: int  # 0 hard, 1 soft, 2 dynamic
    type_id = MSG_SET_PEER_BANDWIDTH

    @classmethod
    def parse(cls, body: bytes | bytearray) -> SetPeerBandwidth:
        _exact(body, 5, "Set Peer Bandwidth")
        size, limit = _BW.unpack(body)
        if limit > 2:
            raise RtmpProtocolError(f"RTMP Set Peer Bandwidth: bad limit type {limit}")
        return cls(size, limit)

    def __bytes__(self) -> bytes:
        return _BW.pack(self.size, self.limit_type)


@dataclass(frozen=True, slots=True)
class UserControl:
    """A User Control message: a 16-bit event type and its data (4 bytes for
    most events, 8 for Set Buffer Length; unknown events keep what came)."""

    event: int
    data: bytes
    type_id = MSG_USER_CONTROL

    @classmethod
    def parse(cls, body: bytes | bytearray) -> UserControl:
        if len(body) < 2 or len(body) > 64:
            raise RtmpProtocolError(f"RTMP User Control: {len(body)} bytes")
        event = _U16.unpack_from(body)[0]
        data = bytes(body[2:])
        need = {UC_SET_BUFFER_LENGTH: 8, UC_PING_REQUEST: 4, UC_PING_RESPONSE: 4,
                UC_STREAM_BEGIN: 4, UC_STREAM_EOF: 4}.get(event)
        if need is not None and len(data) != need:
            raise RtmpProtocolError(f"RTMP User Control {event}: {len(data)} data bytes")
        return cls(event, data)

    @property
    def value(self) -> int:
        """The first 32-bit field: a stream id or a ping timestamp."""
        return int(_U32.unpack_from(self.data)[0]) if len(self.data) >= 4 else 0

    @classmethod
    def of(cls, event: int, *values: int) -> UserControl:
        return cls(event, b"".join(_U32.pack(v & 0xFFFFFFFF) for v in values))

    def __bytes__(self) -> bytes:
        return _U16.pack(self.event) + self.data


ControlMessage = SetChunkSize | Abort | Acknowledgement | WindowAckSize | SetPeerBandwidth | UserControl

_PARSERS: dict[int, type[ControlMessage]] = {
    MSG_SET_CHUNK_SIZE: SetChunkSize,
    MSG_ABORT: Abort,
    MSG_ACK: Acknowledgement,
    MSG_USER_CONTROL: UserControl,
    MSG_WINDOW_ACK_SIZE: WindowAckSize,
    MSG_SET_PEER_BANDWIDTH: SetPeerBandwidth,
}


def parse_control(type_id: int, body: bytes | bytearray) -> ControlMessage:
    """Parse a protocol control or user control message by type id."""
    cls = _PARSERS.get(type_id)
    if cls is None:
        raise RtmpProtocolError(f"RTMP: type {type_id} is not a control message")
    return cls.parse(body)
