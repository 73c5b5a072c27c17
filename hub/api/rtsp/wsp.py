"""WSP: the Streamedian html5 RTSP player's two WebSockets.

`control` (text): INIT makes a session and its channel number; WRAP carries
one RTSP request to the session's RtspConnection, whose response comes back
wrapped as `WSP/1.1 200 OK\\r\\nseq: N\\r\\n\\r\\n<RTSP response>` (an RTSP
error is still a WSP 200: the error is the wrapped RTSP status, as ipchub
does). `data` (binary): JOIN names the channel; from PLAY on, one `$` packet
per message (hub.api.rtsp.ws_transport.WsRtspTransport).

The data socket may be accepted by another front than the control socket
(SO_REUSEPORT): channel numbers are unique in the instance, and a front that
reads a JOIN for a channel it does not hold hands the socket, with the
WebSocket bytes read so far, to the front that does (hub.api.rtsp.rendezvous).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import deque
from typing import TYPE_CHECKING

from ...errors import NotFound, ProtocolError
from ...media.rtsp import NEED_DATA, RtspReader, RtspRequest, RtspResponse
from ...media.websocket import TEXT, WsMessage, encode_close, encode_frame
from ...media.wsp import WspRequest, WspResponse, salvage_seq
from .connection import RtspConnection
from .rendezvous import Rendezvous, adopt, hand_over, rendezvous_name
from .ws_transport import WsMessagePump, WsRtspTransport

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.rtsp.wsp")

#: WSP messages are small; a WRAP holds one RTSP request.
MAX_WSP_MESSAGE = 64 * 1024
_counter = itertools.count(1)
_CSEQ_RE = re.compile(rb"(?im)^cseq[ \t]*:[ \t]*([0-9]{1,9})[ \t]*\r?$")


def _send(transport: asyncio.Transport, resp: WspResponse) -> None:
    if not transport.is_closing():
        transport.write(encode_frame(bytes(resp), TEXT))


def _one_request(payload: bytes) -> RtspRequest:
    """The single whole RTSP request a WRAP must carry, or ProtocolError."""
    reader = RtspReader()
    reader.feed(payload)
    ev = reader.next_event()
    if not isinstance(ev, RtspRequest) or reader.next_event() is not NEED_DATA:
        raise ProtocolError("WRAP must carry exactly one RTSP request")
    return ev


class WspSession:
    """One INIT: an RTSP session whose responses go out wrapped on the
    control socket and whose RTP goes to the joined data socket."""

    def __init__(self, front: FrontContext, control: asyncio.Transport, token_path: str | None) -> None:
        self.front = front
        self.channel = next(_counter) << 8 | (front.args.index & 0xFF)
        self.control = control
        self.pending: deque[str | None] = deque()
        self.adapter = WsRtspTransport(control, self._wrap)
        self.conn = RtspConnection(front, kind="wsp")
        self.conn.token_path = token_path
        self.conn.connection_made(self.adapter)  # type: ignore[arg-type]
        channels[self.channel] = self
        self.rendezvous = Rendezvous(rendezvous_name(front.args.instance, "wsp", str(self.channel)),
                                     self._adopt_data)
        self._tasks: set[asyncio.Task[None]] = set()

    def _wrap(self, rtsp_response: bytes) -> bytes:
        seq = self.pending.popleft() if self.pending else None
        return bytes(WspResponse.reply(200, seq, rtsp_response))

    def wrap_request(self, seq: str | None, payload: bytes) -> None:
        try:
            req = _one_request(payload)
        except ProtocolError as e:
            resp = RtspResponse(e.rtsp_status)
            m = _CSEQ_RE.search(payload[:4096])
            if m:
                resp.headers.add("CSeq", m.group(1).decode("ascii"))
            _send(self.control, WspResponse.reply(200, seq, bytes(resp)))
            return
        del req  # checked only: the session's own reader parses it again
        self.pending.append(seq)
        self.conn.data_received(payload)

    def join(self, data: asyncio.Transport) -> None:
        old = self.adapter.data
        if old is not None and old is not data and not old.is_closing():
            old.close()
        self.adapter.data = data

    def _adopt_data(self, fd: int, already_read: bytes) -> None:
        log.info("channel %d: data socket handed over by another front", self.channel)
        task = asyncio.get_running_loop().create_task(
            adopt(fd, lambda: WspDataProtocol(self.front), already_read))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self, exc: Exception | None = None) -> None:
        if channels.get(self.channel) is self:
            del channels[self.channel]
            self.rendezvous.close()
            for t in self._tasks:
                t.cancel()
            self.adapter.close()
            self.conn.connection_lost(exc)


#: This process's WSP sessions by channel.
channels: dict[int, WspSession] = {}


class WspControlProtocol(asyncio.Protocol):
    def __init__(self, front: FrontContext, token_path: str | None) -> None:
        self.front = front
        self.token_path = token_path
        self.transport: asyncio.Transport | None = None
        self.pump: WsMessagePump | None = None
        self.session: WspSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pump = WsMessagePump(self.transport, self._on_message, MAX_WSP_MESSAGE)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        assert self.pump is not None
        self.pump.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.session.close(exc)

    def _on_message(self, msg: WsMessage) -> None:
        t = self.transport
        assert t is not None
        try:
            req = WspRequest.parse(msg.data)
        except ProtocolError:
            seq = salvage_seq(msg.data)
            _send(t, WspResponse.reply(400, seq))
            if seq is None:
                t.write(encode_close())
                t.close()
            return
        try:
            self._dispatch(req)
        except ProtocolError:
            _send(t, WspResponse.reply(400, req.seq))
        except NotFound:
            _send(t, WspResponse.reply(404, req.seq))

    def _dispatch(self, req: WspRequest) -> None:
        t = self.transport
        assert t is not None
        verb = req.verb
        if verb == "INIT":
            if (req.header("proto") or "rtsp").lower() != "rtsp":
                raise ProtocolError("only proto rtsp")
            if self.session is not None:
                self.session.close()
            self.session = WspSession(self.front, t, self.token_path)
            _send(t, WspResponse.reply(200, req.seq, channel=str(self.session.channel)))
            return
        if verb == "WRAP":
            s = self.session
            ch = req.header("channel")
            if s is None or (ch is not None and ch != str(s.channel)):
                raise NotFound("unknown channel")
            s.wrap_request(req.seq, req.payload)
            return
        if verb in ("GET_INFO", "SWITCH"):
            _send(t, WspResponse.reply(200, req.seq))
            return
        raise ProtocolError(f"{verb} is not a control request")


class WspDataProtocol(asyncio.Protocol):
    """The data socket: waits for JOIN, then only sends (RTCP from the
    player is read and dropped)."""

    def __init__(self, front: FrontContext) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.pump: WsMessagePump | None = None
        self.session: WspSession | None = None
        self._raw = bytearray()  # until JOIN: what a hand-over must replay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pump = WsMessagePump(self.transport, self._on_message, MAX_WSP_MESSAGE)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        assert self.pump is not None
        if self.session is None:
            self._raw += data
        self.pump.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.session.close(exc)

    def _on_message(self, msg: WsMessage) -> None:
        t = self.transport
        assert t is not None
        if self.session is not None:
            return
        try:
            req = WspRequest.parse(msg.data)
            if req.verb != "JOIN":
                raise ProtocolError("the data socket starts with JOIN")
            ch = req.header("channel") or ""
            if not ch.isdigit() or len(ch) > 18:
                raise ProtocolError("JOIN needs a channel")
        except ProtocolError:
            _send(t, WspResponse.reply(400, salvage_seq(msg.data)))
            t.write(encode_close())
            t.close()
            return
        channel = int(ch)
        session = channels.get(channel)
        if session is not None:
            self.session = session
            self._raw.clear()
            session.join(t)
            _send(t, WspResponse.reply(200, req.seq))
            return
        t.pause_reading()
        name = rendezvous_name(self.front.args.instance, "wsp", str(channel))
        if hand_over(name, t, bytes(self._raw)):
            return
        t.resume_reading()
        _send(t, WspResponse.reply(404, req.seq))
        t.write(encode_close())
        t.close()
