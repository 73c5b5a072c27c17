"""RTSP over WebSocket (subprotocol `rtsp`): one RTSP player session over one
WebSocket, through the adapter transport of hub.api.rtsp.ws_transport."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...media.websocket import WsMessage
from ..play.consumer import ClientFlow, Deadline, cap_send_buffer
from .connection import RtspConnection
from .ws_transport import FIRST_MESSAGE_TIMEOUT, WsMessagePump, WsRtspTransport

if TYPE_CHECKING:
    from ..context import FrontContext

#: An RTSP request (text) or an interleaved RTCP packet (binary) per message.
MAX_RTSP_MESSAGE = 64 * 1024


class RtspWsProtocol(asyncio.Protocol):
    """One RTSP session over one WebSocket: text in = RTSP requests, binary in
    = interleaved RTCP; out as WsRtspTransport frames it."""

    def __init__(self, front: FrontContext, token_path: str | None) -> None:
        self.front = front
        self.conn = RtspConnection(front, kind="rtsp-ws")
        self.conn.token_path = token_path
        self.pump: WsMessagePump | None = None
        self.adapter: WsRtspTransport | None = None
        self.flow: ClientFlow | None = None
        self.first: Deadline | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        cap_send_buffer(t)
        self.flow = ClientFlow(t)
        self.first = Deadline(t, FIRST_MESSAGE_TIMEOUT, "RTSP request over WebSocket")
        self.adapter = WsRtspTransport(t)
        self.adapter.data = t
        self.pump = WsMessagePump(t, self._on_message, MAX_RTSP_MESSAGE)
        self.conn.connection_made(self.adapter)  # type: ignore[arg-type]

    def _on_message(self, msg: WsMessage) -> None:
        if self.first is not None:
            self.first.met()
        self.conn.data_received(msg.data)

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
        if self.first is not None:
            self.first.met()
        self.conn.connection_lost(exc)
