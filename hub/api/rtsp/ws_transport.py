"""The adapter transport that lets the one RTSP player session
(hub.api.rtsp.connection) run over WebSockets, the WebSocket message pump,
and the base of the three WebSocket protocols that carry RTSP (RTSP over
WebSocket, WSP control, WSP data).

RtspConnection writes two kinds of bytes to its transport: RTSP responses,
and `$`-interleaved RTP/RTCP blobs (several packets per write, from the
fan-out). `WsRtspTransport` stands in for the asyncio transport: a response
becomes one WebSocket text message (for WSP, wrapped in its WSP reply first),
a blob becomes one binary message per `$` packet. The blob is framed once per
fan-out turn and shared by every WebSocket player (`InterleavedFramer`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, cast

from ...media.websocket import (PONG, TEXT, WsClose, WsFrameDecoder, WsMessage, WsPing, WsProtocolError,
                                close_code_for, encode_close, encode_frame)
from ...media.wsp import InterleavedFramer
from ..play.consumer import ClientFlow, Deadline, cap_send_buffer, close_when_sent, write_bounded

#: Shared by every WebSocket player in this process: the fan-out hands them
#: all the same blob object in one turn.
FRAMER = InterleavedFramer()
#: A WebSocket that has not sent its first request (RTSP over WebSocket),
#: INIT (WSP control) or JOIN (WSP data) this long after its upgrade is closed.
FIRST_MESSAGE_TIMEOUT = 10.0


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
        if not len(data):
            return  # nothing (an empty GOP): not an empty text message
        if data[0] == 0x24:  # "$": interleaved packets
            out = self.data
            if out is not None and not out.is_closing():
                out.write(FRAMER.frame(data))
            return
        text = bytes(data)
        if self.wrap is not None:
            text = self.wrap(text)
        write_bounded(self.control, encode_frame(text, TEXT))

    def is_closing(self) -> bool:
        return self._closed or self.control.is_closing() or (self.data is not None and self.data.is_closing())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in (self.control, self.data):
            if t is not None and not t.is_closing():
                t.write(encode_close())
                close_when_sent(t)

    def abort(self) -> None:
        """A stuck player (its Consumer gave up): both sockets, at once."""
        self._closed = True
        for t in (self.control, self.data):
            if t is not None:
                t.abort()

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
                    write_bounded(t, encode_frame(ev.data, opcode=PONG))
                elif isinstance(ev, WsClose):
                    if not t.is_closing():
                        t.write(encode_close())
                        close_when_sent(t)
                    return
                if t.is_closing():
                    return
        except WsProtocolError as e:
            if not t.is_closing():
                t.write(encode_close(close_code_for(e)))
                close_when_sent(t)


class WsPeerProtocol(asyncio.Protocol):
    """What every WebSocket that carries RTSP does once upgraded: its send
    buffer capped, reading that follows writing (`ClientFlow`), a deadline
    on its first message (`first_message`, met by `started`), and the
    message pump that hands each message to `on_message`. Subclasses set
    the two class attributes and override `on_message` and `on_lost`."""

    first_message = "first message"
    max_message = 64 * 1024

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pump: WsMessagePump | None = None
        self.flow: ClientFlow | None = None
        self.first: Deadline | None = None

    def on_message(self, msg: WsMessage) -> None:
        raise NotImplementedError

    def on_lost(self, exc: Exception | None) -> None:
        """The connection is gone (flow control and deadline already ended)."""

    def started(self) -> None:
        if self.first is not None:
            self.first.met()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = t
        cap_send_buffer(t)
        self.flow = ClientFlow(t)
        self.first = Deadline(t, FIRST_MESSAGE_TIMEOUT, self.first_message)
        self.pump = WsMessagePump(t, self.on_message, self.max_message)

    def data_received(self, data: bytes) -> None:
        assert self.pump is not None
        self.pump.feed(data)

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.pause_writing()

    def resume_writing(self) -> None:
        if self.flow is not None:
            self.flow.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.flow is not None:
            self.flow.close()
        self.started()
        self.on_lost(exc)
