"""WSP: the Streamedian html5 RTSP player's two WebSockets.

`control` (text): INIT makes a session and its channel number; WRAP carries
one RTSP request to the session's RtspConnection, whose response comes back
wrapped as `WSP/1.1 200 OK\\r\\nseq: N\\r\\n\\r\\n<RTSP response>` (an RTSP
error is still a WSP 200: the error is the wrapped RTSP status, as ipchub
does). `data` (binary): JOIN names the channel; from PLAY on, one `$` packet
per message (hub.api.rtsp.ws_transport.WsRtspTransport).

The data socket may be accepted by another front than the control socket
(SO_REUSEPORT): a front that reads a JOIN for a channel it does not hold
hands the socket, with who opened it and the WebSocket bytes read so far, to
the front that does (hub.api.rtsp.rendezvous).

A channel is a capability: 128 random bits, never a counter. A JOIN is
accepted only from a data socket opened on the control socket's path by the
same user (its `?token=`, when auth is on), and only once: a live data
socket is never replaced. Every refusal is the same 404 as an unknown
channel, so a refusal tells nothing about other sessions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import struct
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import HubError, NotFound, ProtocolError
from ...media.websocket import CLOSE_TOO_BIG, TEXT, WsMessage, close_code_for, encode_close, encode_frame
from ...media.wsp import WspRequest, WspResponse, salvage_seq
from ..play.consumer import close_when_sent, write_bounded
from .connection import RtspConnection
from .rendezvous import Rendezvous, adopt, hand_over, rendezvous_name
from .ws_transport import WsPeerProtocol, WsRtspTransport

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.rtsp.wsp")

#: WSP messages are small; a WRAP holds one RTSP request.
MAX_WSP_MESSAGE = 64 * 1024
#: Random bits in a channel, written as 39 decimal digits (digits, as the
#: reference's channel numbers are).
CHANNEL_BITS = 128
#: Bytes a data socket may send before its JOIN (all of them are kept for a
#: hand-over's replay); past this it is closed. A JOIN is one short message;
#: pings and pongs are no message, and without this only the first message's
#: deadline bounded them. As much as a tunnel half carries into a hand-over.
MAX_BEFORE_JOIN = 256 * 1024
_CHANNEL_RE = re.compile(r"[0-9]{39}\Z")
_OWNER_LEN = struct.Struct(">H")


def _send(transport: asyncio.Transport, resp: WspResponse) -> None:
    write_bounded(transport, encode_frame(bytes(resp), TEXT))


def _refuse(transport: asyncio.Transport, exc: HubError, seq: str | None, close: bool) -> None:
    """WSP's one error answer: `exc`'s status in a WSP reply, then, when the
    socket cannot go on, the WebSocket Close that `exc` calls for."""
    _send(transport, WspResponse.reply(exc.http_status, seq))
    if close:
        transport.write(encode_close(close_code_for(exc)))
        close_when_sent(transport)


@dataclass(frozen=True)
class WspOwner:
    """Who opened a WSP socket: the stream path of its URL and the user of
    its token (None when auth is off). A JOIN must come from the owner."""

    path: str
    user: str | None

    def pack(self, raw: bytes) -> bytes:
        """A hand-over payload: this owner, then the socket's bytes read so far."""
        ident = json.dumps([self.path, self.user]).encode()
        return _OWNER_LEN.pack(len(ident)) + ident + raw

    @classmethod
    def unpack(cls, payload: bytes) -> tuple[WspOwner, bytes]:
        try:
            (n,) = _OWNER_LEN.unpack_from(payload)
            path, user = json.loads(payload[_OWNER_LEN.size:_OWNER_LEN.size + n])
        except (struct.error, ValueError, TypeError) as e:
            raise ProtocolError(f"bad WSP hand-over: {e}") from None
        if not isinstance(path, str) or not (user is None or isinstance(user, str)):
            raise ProtocolError("bad WSP hand-over owner")
        return cls(path, user), payload[_OWNER_LEN.size + n:]


class WspSession:
    """One INIT: an RTSP session whose responses go out wrapped on the
    control socket and whose RTP goes to the joined data socket."""

    def __init__(self, front: FrontContext, control: asyncio.Transport, token_path: str | None,
                 owner: WspOwner) -> None:
        self.front = front
        self.channel = f"{secrets.randbits(CHANNEL_BITS):039d}"
        self.owner = owner
        self.control = control
        self.pending: deque[str | None] = deque()
        self.adapter = WsRtspTransport(control, self._wrap)
        self.conn = RtspConnection(front, kind="wsp", token_path=token_path)
        self.conn.connection_made(self.adapter)  # type: ignore[arg-type]
        channels[self.channel] = self
        self.rendezvous = Rendezvous(rendezvous_name(front.args.instance, "wsp", self.channel),
                                     self._adopt_data)
        self._tasks: set[asyncio.Task[None]] = set()

    def _wrap(self, rtsp_response: bytes) -> bytes:
        seq = self.pending.popleft() if self.pending else None
        return bytes(WspResponse.reply(200, seq, rtsp_response))

    def wrap_request(self, seq: str | None, payload: bytes) -> None:
        """One WRAP: one whole RTSP request for the session's engine, which
        answers every WRAP exactly once, in order (a bad one with 400)."""
        self.pending.append(seq)
        self.conn.receive_message(payload)

    def join(self, data: asyncio.Transport, owner: WspOwner) -> bool:
        """Attach the data socket; False (nothing changed) unless it is the
        owner's first one."""
        if owner != self.owner or self.adapter.data is not None:
            return False
        self.adapter.data = data
        return True

    def _adopt_data(self, fd: int, payload: bytes) -> None:
        try:
            owner, already_read = WspOwner.unpack(payload)
        except ProtocolError as e:
            log.warning("WSP data socket hand-over refused: %s", e)
            os.close(fd)
            return
        log.info("WSP: a data socket was handed over by another front")
        task = asyncio.get_running_loop().create_task(
            adopt(fd, lambda: WspDataProtocol(self.front, owner), already_read))
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
channels: dict[str, WspSession] = {}


class WspSocket(WsPeerProtocol):
    """Either WSP socket: opened by `owner`, part of `session` once it has one."""

    max_message = MAX_WSP_MESSAGE

    def __init__(self, front: FrontContext, owner: WspOwner) -> None:
        super().__init__()
        self.front = front
        self.owner = owner
        self.session: WspSession | None = None

    def on_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.session.close(exc)


class WspControlProtocol(WspSocket):
    first_message = "WSP INIT"

    def __init__(self, front: FrontContext, token_path: str | None, owner: WspOwner) -> None:
        super().__init__(front, owner)
        self.token_path = token_path

    def on_message(self, msg: WsMessage) -> None:
        t = self.transport
        assert t is not None
        try:
            req = WspRequest.parse(msg.data)
        except ProtocolError as e:
            seq = salvage_seq(msg.data)
            _refuse(t, e, seq, close=seq is None)  # no seq: the stream is out of step
            return
        try:
            self._dispatch(req)
        except HubError as e:  # refused, and the session goes on
            _refuse(t, e, req.seq, close=False)

    def _dispatch(self, req: WspRequest) -> None:
        t = self.transport
        assert t is not None
        verb = req.verb
        if verb == "INIT":
            if (req.header("proto") or "rtsp").lower() != "rtsp":
                raise ProtocolError("only proto rtsp")
            if self.session is not None:  # refused, and the session goes on
                raise ProtocolError("this control socket has its session already")
            self.session = WspSession(self.front, t, self.token_path, self.owner)
            self.started()
            _send(t, WspResponse.reply(200, req.seq, channel=self.session.channel))
            return
        if verb == "WRAP":
            s = self.session
            ch = req.header("channel")
            if s is None or (ch is not None and ch != s.channel):
                raise NotFound("unknown channel")
            s.wrap_request(req.seq, req.payload)
            return
        if verb in ("GET_INFO", "SWITCH"):
            _send(t, WspResponse.reply(200, req.seq))
            return
        raise ProtocolError(f"{verb} is not a control request")


class WspDataProtocol(WspSocket):
    """The data socket: waits for JOIN, then only sends (RTCP from the
    player is read and dropped)."""

    first_message = "WSP JOIN"

    def __init__(self, front: FrontContext, owner: WspOwner) -> None:
        super().__init__(front, owner)
        self._raw = bytearray()  # until JOIN: what a hand-over must replay

    def data_received(self, data: bytes) -> None:
        if self.session is None:
            self._raw += data
            if len(self._raw) > MAX_BEFORE_JOIN:
                t = self.transport
                assert t is not None
                log.info("WSP: closing a data socket that sent %d bytes without a JOIN", len(self._raw))
                self._raw.clear()
                if not t.is_closing():
                    t.write(encode_close(CLOSE_TOO_BIG))
                    close_when_sent(t)
                return
        super().data_received(data)

    def on_message(self, msg: WsMessage) -> None:
        t = self.transport
        assert t is not None
        if self.session is not None:
            return
        try:
            req = WspRequest.parse(msg.data)
            if req.verb != "JOIN":
                raise ProtocolError("the data socket starts with JOIN")
            ch = req.header("channel") or ""
            if not ch or len(ch) > 64 or not ch.isascii() or not ch.isalnum():
                raise ProtocolError("JOIN needs a channel")
        except ProtocolError as e:
            _refuse(t, e, salvage_seq(msg.data), close=True)
            return
        session = channels.get(ch)
        if session is not None:
            if session.join(t, self.owner):
                self.session = session
                self._raw.clear()
                self.started()
                _send(t, WspResponse.reply(200, req.seq))
                return
            log.info("WSP: refused a JOIN of a channel by another owner or a second data socket")
        elif _CHANNEL_RE.match(ch):
            t.pause_reading()
            name = rendezvous_name(self.front.args.instance, "wsp", ch)
            if hand_over(name, t, self.owner.pack(bytes(self._raw))):
                return
            t.resume_reading()
        _refuse(t, NotFound("no such channel for this client"), req.seq, close=True)
