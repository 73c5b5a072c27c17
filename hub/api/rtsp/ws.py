"""RTSP over WebSocket (subprotocol `rtsp`), and the adapter transport that
lets the one RTSP player session (hub.api.rtsp_conn) run over WebSockets.

RtspConnection writes two kinds of bytes to its transport: RTSP responses,
and `$`-interleaved RTP/RTCP blobs (several packets per write, from the
fan-out). `WsRtspTransport` stands in for the asyncio transport: a response
becomes one WebSocket text message (for WSP, wrapped in its WSP reply first),
a blob becomes one binary message per `$` packet. The blob is framed once per
fan-out turn and shared by every WebSocket player (`InterleavedFramer`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ProtocolError
from ..media.http1 import HttpRequestHead
from ..media.websocket import (PONG, TEXT, WsClose, WsFrameDecoder, WsMessage, WsPing, WsProtocolError,
                               accept_key, encode_close, encode_frame)
from ..media.wsp import InterleavedFramer
from ..placement import canonical_path
from .responses import raw_http_response
from .rtsp_conn import RtspConnection

if TYPE_CHECKING:
    from .front import FrontContext

log = logging.getLogger("hub.api.rtsp_ws")

#: Shared by every WebSocket player in this process: the fan-out hands them
#: all the same blob object in one turn.
FRAMER = InterleavedFramer()


class WsRtspTransport:
    """The asyncio.Transport surface RtspConnection and its Consumer use.

    `control` receives the responses, `data` the RTP (the same socket for
    RTSP over WebSocket; WSP's second socket, joined later, for WSP).
    `wrap` turns an RTSP response into the text message to send."""

    def __init__(self, control: asyncio.Transport, wrap: Callable[[bytes], bytes] | None = None) -> None:
        self.control = control
        self.data: asyncio.Transport | None = None
        self.wrap = wrap
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) and data[0] == 0x24:  # "$": interleaved packets
            out = self.data
            if out is not None and not out.is_closing():
                out.write(FRAMER.frame(data))
            return
        text = bytes(data)
        if self.wrap is not None:
            text = self.wrap(text)
        if not self.control.is_closing():
            self.control.write(encode_frame(text, TEXT))

    def is_closing(self) -> bool:
        return self._closed or self.control.is_closing() or (self.data is not None and self.data.is_closing())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in (self.control, self.data):
            if t is not None and not t.is_closing():
                t.write(encode_close())
                t.close()

    def _out(self) -> asyncio.Transport:
        return self.data if self.data is not None else self.control

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._out().get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._out().get_write_buffer_size()

    def pause_reading(self) -> None:
        self.control.pause_reading()

    def resume_reading(self) -> None:
        self.control.resume_reading()


class WsMessagePump:
    """Feeds a WebSocket's bytes to a decoder; answers pings and closes.

    `on_message(msg)` gets every text/binary message; a protocol violation
    closes with its code."""

    def __init__(self, transport: asyncio.Transport, on_message: Callable[[WsMessage], None],
                 max_message: int = 1 << 20) -> None:
        self.transport = transport
        self.decoder = WsFrameDecoder(max_message)
        self.on_message = on_message
        self.inbytes = 0

    def feed(self, data: bytes) -> None:
        self.inbytes += len(data)
        t = self.transport
        try:
            self.decoder.feed(data)
            while (ev := self.decoder.next_event()) is not None:
                if isinstance(ev, WsMessage):
                    self.on_message(ev)
                elif isinstance(ev, WsPing):
                    t.write(encode_frame(ev.data, opcode=PONG))
                elif isinstance(ev, WsClose):
                    if not t.is_closing():
                        t.write(encode_close())
                        t.close()
                    return
                if t.is_closing():
                    return
        except WsProtocolError as e:
            if not t.is_closing():
                t.write(encode_close(e.close_code))
                t.close()


class RtspWsProtocol(asyncio.Protocol):
    """One RTSP session over one WebSocket: text in = RTSP requests, binary in
    = interleaved RTCP; out as WsRtspTransport frames it."""

    def __init__(self, front: FrontContext, token_path: str | None) -> None:
        self.front = front
        self.conn = RtspConnection(front, kind="rtsp-ws")
        self.conn.token_path = token_path
        self.pump: WsMessagePump | None = None
        self.adapter: WsRtspTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        self.adapter = WsRtspTransport(t)
        self.adapter.data = t
        self.pump = WsMessagePump(t, lambda m: self.conn.data_received(m.data))
        self.conn.connection_made(self.adapter)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        assert self.pump is not None
        self.pump.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)


def subprotocols_of(head: HttpRequestHead) -> list[str]:
    return [p.strip().lower() for p in head.header("sec-websocket-protocol").split(",") if p.strip()]


def upgrade(front: FrontContext, transport: asyncio.Transport, head: HttpRequestHead, path: str,
            already_read: bytes) -> bool:
    """Serve a WebSocket on `/streams/PATH` by its subprotocol: `rtsp` (RTSP
    over WebSocket), `control` / `data` (WSP). False when none of those is
    asked for (the caller answers 404, as before)."""
    protos = subprotocols_of(head)
    chosen = next((p for p in protos if p in ("rtsp", "control", "data")), None)
    if chosen is None:
        return False
    key = head.header("sec-websocket-key")
    if not key:
        raise ProtocolError("missing Sec-WebSocket-Key")
    token_path = canonical_path(path) if head.query.get("token") else None
    proto: asyncio.Protocol
    if chosen == "rtsp":
        proto = RtspWsProtocol(front, token_path)
    else:
        from .wsp import WspControlProtocol, WspDataProtocol

        proto = WspControlProtocol(front, token_path) if chosen == "control" else WspDataProtocol(front)
    transport.write(raw_http_response(
        101, "Switching Protocols", close=False,
        extra={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": accept_key(key),
               "Sec-WebSocket-Protocol": chosen}))
    transport.set_protocol(proto)
    proto.connection_made(transport)
    if already_read and not transport.is_closing():
        proto.data_received(already_read)
    return True
