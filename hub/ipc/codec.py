"""Control-plane framing: 4-byte big-endian length, then a msgpack map.

The only module that imports msgpack, so the wire format can change in one
place. Sans-IO: `encode_frame` returns bytes, `FrameDecoder.feed` takes bytes
and returns whole messages; neither touches a socket or a clock.

A frame's body must be a msgpack map whose "t" (message type) is a str; the
envelope fields of each type are checked by `hub.ipc.envelope.check`. `bin`
stays `bytes`, `str` stays `str` (use_bin_type=True, raw=False), so bytes the
front already read from a socket travel unchanged.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

import msgpack  # type: ignore[import-untyped]

from ..errors import ProtocolError

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
# A frame is a control message, never media: 16 MiB is far above any real one
# (a stats reply with thousands of streams is a few hundred KiB) and keeps a
# broken or hostile peer from making us buffer gigabytes.
MAX_FRAME = 16 * 1024 * 1024

_packer_options: dict[str, Any] = {"use_bin_type": True}


def encode_body(msg: Mapping[str, Any]) -> bytes:
    """The msgpack body of one frame, without the length prefix."""
    return msgpack.packb(msg, **_packer_options)  # type: ignore[no-any-return]


def encode_frame(msg: Mapping[str, Any]) -> bytes:
    """One whole frame: length prefix + msgpack body.

    Raises ProtocolError if the body would exceed MAX_FRAME (the peer would
    refuse it and drop the link) or if `msg` holds a type msgpack cannot pack.
    """
    try:
        body = msgpack.packb(msg, **_packer_options)
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError(f"cannot encode IPC message: {e}") from e
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"IPC frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return b"".join((HEADER.pack(len(body)), body))


def decode_body(body: bytes | memoryview) -> dict[str, Any]:
    """Unpack one frame body; it must be a map with a str "t"."""
    try:
        msg = msgpack.unpackb(body, use_list=True, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises a zoo of types for bad input
        raise ProtocolError(f"malformed IPC frame: {e.__class__.__name__}: {e}") from e
    if not isinstance(msg, dict):
        raise ProtocolError(f"IPC frame is a {type(msg).__name__}, not a map")
    if not isinstance(msg.get("t"), str):
        raise ProtocolError('IPC frame has no str "t" (message type)')
    return msg


class FrameDecoder:
    """Incremental frame splitter: bytes in, whole messages out.

    After a ProtocolError the decoder is poisoned (every later `feed` raises
    again): the stream has lost its framing and the link must be closed.
    """

    __slots__ = ("_buf", "_max", "_error")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[dict[str, Any]] = []
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= HEADER_SIZE:
                (size,) = HEADER.unpack_from(buf, pos)
                if size > self._max:
                    raise ProtocolError(f"IPC frame of {size} bytes exceeds {self._max}")
                if end - pos - HEADER_SIZE < size:
                    break
                start = pos + HEADER_SIZE
                out.append(decode_body(view[start:start + size]))
                pos = start + size
        except ProtocolError as e:
            self._error = e
            raise
        finally:
            view.release()
        if pos:
            del buf[:pos]
        return out
