"""RTSP over WebSocket (subprotocol `rtsp`): one RTSP player session over one
WebSocket, through the adapter transport of hub.api.rtsp.ws_transport."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...media.websocket import WsMessage
from .connection import RtspConnection
from .ws_transport import WsPeerProtocol, WsRtspTransport

if TYPE_CHECKING:
    from ..context import FrontContext


#: An RTSP request (text) or an interleaved RTCP packet (binary) per message.
MAX_RTSP_MESSAGE = 64 * 1024


class RtspWsProtocol(WsPeerProtocol):
    """One RTSP session over one WebSocket: the WebSocket is the byte stream
    (text in = RTSP requests, binary in = interleaved RTCP); out as
    WsRtspTransport frames it."""

    first_message = "RTSP request over WebSocket"
    max_message = MAX_RTSP_MESSAGE

    def __init__(self, front: FrontContext, token_path: str | None) -> None:
        super().__init__()
        self.front = front
        self.conn = RtspConnection(front, kind="rtsp-ws", token_path=token_path)
        self.adapter: WsRtspTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.adapter = WsRtspTransport(self.transport)
        self.adapter.data = self.transport
        self.conn.connection_made(self.adapter)  # type: ignore[arg-type]

    def on_message(self, msg: WsMessage) -> None:
        self.started()
        self.conn.data_received(msg.data)

    def on_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost(exc)
