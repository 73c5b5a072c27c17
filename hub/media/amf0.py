"""AMF0 encoder and decoder (Action Message Format 0).

FLV carries its ``onMetaData`` script tag in AMF0, so the FLV muxer needs the
encoder and the FLV reader (tests, e2e checks) needs the decoder. Only the
types a media server meets are supported: number, boolean, string, long
string, object, null, undefined, ECMA array, strict array and date (decoded
as its millisecond number). Bad input raises :class:`hub.errors.ProtocolError`
and nothing else, so a malicious peer cannot crash a session with it.
"""

from __future__ import annotations

import struct
from typing import Union

from hub.errors import ProtocolError

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
NULL = 0x05
UNDEFINED = 0x06
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C

#: Nesting limit: deep enough for any real metadata, shallow enough that a
#: crafted input cannot exhaust the Python stack.
MAX_DEPTH = 32

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_END = b"\x00\x00\x09"


class EcmaArray(dict[str, "AmfValue"]):
    """A dict that encodes as an AMF0 ECMA array (what ``onMetaData`` uses)
    rather than as an anonymous object."""


AmfValue = Union[float, int, bool, str, None, dict[str, "AmfValue"], list["AmfValue"]]


def _key(out: bytearray, key: str) -> None:
    raw = key.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("AMF0 property name longer than 65535 bytes")
    out += _U16.pack(len(raw))
    out += raw


def _encode_into(out: bytearray, value: AmfValue) -> None:
    if value is None:
        out.append(NULL)
    elif isinstance(value, bool):  # before int: bool is an int subclass
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, (int, float)):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw))
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, dict):
        if isinstance(value, EcmaArray):
            out.append(ECMA_ARRAY)
            out += _U32.pack(len(value))
        else:
            out.append(OBJECT)
        for k, v in value.items():
            _key(out, k)
            _encode_into(out, v)
        out += _END
    elif isinstance(value, list):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for v in value:
            _encode_into(out, v)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def encode(*values: AmfValue) -> bytes:
    """Encode values one after the other (a script tag is ``encode(name, args)``)."""
    out = bytearray()
    for v in values:
        _encode_into(out, v)
    return bytes(out)


class _Decoder:
    __slots__ = ("data", "pos", "max_depth")

    def __init__(self, data: bytes | bytearray | memoryview, max_depth: int = MAX_DEPTH) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.max_depth = max_depth

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ProtocolError("AMF0: truncated value")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def text(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("AMF0: string is not UTF-8") from exc

    def properties(self, into: dict[str, AmfValue], depth: int) -> None:
        while True:
            name = self.text(self.u16())
            if name == "" and self.pos < len(self.data) and self.data[self.pos] == OBJECT_END:
                self.pos += 1
                return
            into[name] = self.value(depth + 1)

    def value(self, depth: int = 0) -> AmfValue:
        if depth > self.max_depth:
            raise ProtocolError("AMF0: nesting too deep")
        marker = self.u8()
        if marker == NUMBER:
            return float(_DOUBLE.unpack(self.take(8))[0])
        if marker == BOOLEAN:
            return self.u8() != 0
        if marker == STRING:
            return self.text(self.u16())
        if marker == LONG_STRING:
            return self.text(self.u32())
        if marker in (NULL, UNDEFINED):
            return None
        if marker == OBJECT:
            obj: dict[str, AmfValue] = {}
            self.properties(obj, depth)
            return obj
        if marker == ECMA_ARRAY:
            self.u32()  # approximate count; the end marker is authoritative
            arr = EcmaArray()
            self.properties(arr, depth)
            return arr
        if marker == STRICT_ARRAY:
            count = self.u32()
            if count > len(self.data) - self.pos:  # each element is >= 1 byte
                raise ProtocolError("AMF0: strict array count exceeds data")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == DATE:
            ms = float(_DOUBLE.unpack(self.take(8))[0])
            self.take(2)  # time zone, reserved
            return ms
        raise ProtocolError(f"AMF0: unsupported marker 0x{marker:02x}")


def decode_value(data: bytes | bytearray | memoryview, offset: int = 0,
                 max_depth: int = MAX_DEPTH) -> tuple[AmfValue, int]:
    """Decode one value at ``offset``; return it and the offset after it."""
    dec = _Decoder(data, max_depth)
    if not 0 <= offset <= len(dec.data):
        raise ProtocolError("AMF0: offset out of range")
    dec.pos = offset
    return dec.value(), dec.pos


def decode(data: bytes | bytearray | memoryview, max_depth: int = MAX_DEPTH) -> list[AmfValue]:
    """Decode every value in ``data`` (a script tag body: name, then arguments).

    ``max_depth`` caps nesting (RTMP commands allow less than metadata files)."""
    dec = _Decoder(data, max_depth)
    out: list[AmfValue] = []
    while dec.pos < len(dec.data):
        out.append(dec.value())
    return out
