"""The WebSocket upgrade on `/streams/PATH`: RTSP over WebSocket or WSP,
chosen by the subprotocol the client asks for."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...errors import ProtocolError
from ...media.http1 import HttpRequestHead
from ...media.websocket import accept_key
from ...placement import canonical_path
from ..http_responses import raw_http_response
from .ws import RtspWsProtocol
from .wsp import WspControlProtocol, WspDataProtocol, WspOwner

if TYPE_CHECKING:
    from ..context import FrontContext


def subprotocols_of(head: HttpRequestHead) -> list[str]:
    return [p.strip().lower() for p in head.header("sec-websocket-protocol").split(",") if p.strip()]


def upgrade(front: FrontContext, transport: asyncio.Transport, head: HttpRequestHead, path: str,
            already_read: bytes, user: str | None = None) -> bool:
    """Serve a WebSocket on `/streams/PATH` by its subprotocol: `rtsp` (RTSP
    over WebSocket), `control` / `data` (WSP). False when none of those is
    asked for (the caller answers 404, as before). `user` is whose token
    opened it (None when auth is off): a WSP data socket must match."""
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
        owner = WspOwner(canonical_path(path), user)
        proto = (WspControlProtocol(front, token_path, owner) if chosen == "control"
                 else WspDataProtocol(front, owner))
    transport.write(raw_http_response(
        101, "Switching Protocols", close=False,
        extra={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": accept_key(key),
               "Sec-WebSocket-Protocol": chosen}))
    transport.set_protocol(proto)
    proto.connection_made(transport)
    if already_read and not transport.is_closing():
        proto.data_received(already_read)
    return True
