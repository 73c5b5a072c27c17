"""Raw media HTTP/WebSocket protocol for `/streams/...` and `/ws/...`.

Requests are decided here (crossdomain, auth, 404) and, once a player is
attached, its frames are written straight to the transport: per-frame ASGI
calls cost 2-3x the kernel's copy (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import HubError, NotFound, ProtocolError
from ...logs import loggable_target
from ...placement import canonical_path
from ...media.http1 import HttpRequestHead, parse_request_head
from ...media.websocket import (PONG, WsClose, WsFrameDecoder, WsPing, accept_key, close_code_for, encode_close,
                                encode_frame)
from ..access import check_pull_token
from .consumer import ClientFlow, Consumer, cap_send_buffer, close_when_sent, peer_address
from ...media.flv import HevcMode
from .flv import FlvFanout
from . import hls
from ..http_responses import CROSSDOMAIN_XML, http_error_response, raw_http_response
from ..rtsp.upgrade import upgrade

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.play.http")

#: Bytes a client may send while its request is being decided.
MAX_PENDING = 64 * 1024
#: A request head must be whole this long after its connection reached us
#: (the sniffer's bound for a first request; a kept-alive connection's later
#: request may reach this protocol with only part of its head).
HEAD_TIMEOUT = 10.0

_TS_RE = re.compile(r"^(?P<path>/.+)/(?P<seq>[^/]+)\.ts$")


@dataclass(frozen=True)
class MediaRequest:
    """What a media URL asks for: a stream path and a format."""

    kind: str  # "flv", "m3u8", "ts", "fmp4", "ws" (RTSP/WSP over WebSocket)
    path: str
    segment: int = -1
    name: str = ""  # an fMP4 HLS file


def classify(head: HttpRequestHead) -> MediaRequest:
    """Map a media URL to (kind, stream path); NotFound for anything else."""
    p = head.path
    if p.startswith("/ws/"):
        if p.endswith(".flv"):
            return MediaRequest("flv", p[3:-4])
        raise NotFound("404 page not found")
    rest = p[len("/streams"):]
    if rest.endswith(".flv") and len(rest) > 5:
        return MediaRequest("flv", rest[:-4])
    if rest.endswith(".m3u8") and len(rest) > 6:
        return MediaRequest("m3u8", rest[:-5])
    m = hls.FMP4_FILE.match(rest)
    if m:
        return MediaRequest("fmp4", m.group("path"), name=m.group("name"))
    m = _TS_RE.match(rest)
    if m:
        if not m.group("seq").isascii() or not m.group("seq").isdigit() or len(m.group("seq")) > 18:
            raise ProtocolError("Path illegal")
        return MediaRequest("ts", m.group("path"), int(m.group("seq")))
    if head.is_websocket and len(rest) > 1:
        return MediaRequest("ws", rest)
    raise NotFound("404 page not found")


class MediaHttpProtocol(asyncio.Protocol):
    def __init__(self, front: FrontContext) -> None:
        self.front = front
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._consumer: Consumer | None = None
        self._ws: WsFrameDecoder | None = None
        self._flow: ClientFlow | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_only = False  # the request is a HEAD: heads only, whatever the answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        self._head_timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._task is None and self._transport is not None:
            log.info("closing a media connection: request head not whole after %.0f s", HEAD_TIMEOUT)
            self._transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self._consumer is not None:
            self._on_player_bytes(data)
            return
        if self._task is not None:
            if len(self._buf) < MAX_PENDING:
                self._buf += data
            return
        self._buf += data
        try:
            parsed = parse_request_head(self._buf)
        except ProtocolError as e:
            self._respond_error(e)
            return
        if parsed is None:
            return
        head, used = parsed
        del self._buf[:used]
        self._cancel_head_timer()
        self._task = asyncio.get_running_loop().create_task(self._serve(head))

    def pause_writing(self) -> None:
        if self._flow is not None:
            self._flow.pause_writing()

    def resume_writing(self) -> None:
        if self._flow is not None:
            self._flow.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._flow is not None:
            self._flow.close()
        if self._consumer is not None:
            self._consumer.close()

    async def _serve(self, head: HttpRequestHead) -> None:
        self._head_only = head.method == "HEAD"
        try:
            if head.path == "/streams/crossdomain.xml":
                self._write_close(raw_http_response(200, "OK", CROSSDOMAIN_XML, "application/xml"))
                return
            if head.method not in ("GET", "HEAD"):
                raise NotFound("404 page not found")
            req = classify(head)
            user = check_pull_token(self.front, head.query, head.header("authorization") or None,
                                    canonical_path(req.path))
            if req.kind == "flv":
                await self._serve_flv(head, req, user.name if user else "")
                return
            if req.kind in ("m3u8", "ts", "fmp4"):
                await self._serve_hls(head, req)
                return
            # RTSP over WebSocket and WSP, by subprotocol.
            assert self._transport is not None
            already = bytes(self._buf)
            self._buf.clear()
            if upgrade(self.front, self._transport, head, req.path, already, user.name if user else None):
                return
            raise NotFound("404 page not found")
        except HubError as e:
            self._respond_error(e)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("media request %s failed", loggable_target(head.target))
            self._respond_error(HubError("internal error"))

    async def _serve_flv(self, head: HttpRequestHead, req: MediaRequest, user: str = "") -> None:
        assert self._transport is not None
        view = await self.front.views.open(req.path)
        hevc_mode: HevcMode = "legacy" if head.query.get("hevc") == "legacy" else "enhanced"
        ws = head.is_websocket
        key = head.header("sec-websocket-key")
        if ws and not key:
            raise ProtocolError("missing Sec-WebSocket-Key")
        if head.method == "HEAD":  # what a GET's answer starts with; no player, no body
            self._write_close(raw_http_response(200, "OK", content_type="video/x-flv", length=None,
                                                extra={"Cache-Control": "no-cache"}))
            return
        ticket = await self.front.admit_player(view.desc.path, peer_address(self._transport))
        if ws:
            self._ws = WsFrameDecoder()
            self._flow = ClientFlow(self._transport)
            self._transport.write(raw_http_response(
                101, "Switching Protocols", extra={"Upgrade": "websocket", "Connection": "Upgrade",
                                                  "Sec-WebSocket-Accept": accept_key(key)}, close=False))
            extra = f"net=ws-flv,{self._peer()}"
        else:
            self._transport.write(raw_http_response(
                200, "OK", content_type="video/x-flv", length=None,
                extra={"Cache-Control": "no-cache"}))
            extra = f"net=http-flv,{self._peer()}"
        cap_send_buffer(self._transport)
        counters = self.front.counters
        counters.flv_total += 1
        counters.flv_active += 1

        def gone(c: Consumer) -> None:
            counters.flv_active -= 1
            view.drop_consumer(c)

        self._consumer = Consumer(self._transport, "FLV", extra, on_close=gone)
        self._consumer.ticket = ticket
        self._consumer.user = user
        fanout = view.fanout(f"flv-{'ws' if ws else 'http'}-{hevc_mode}",
                             lambda v: FlvFanout(v, ws=ws, hevc_mode=hevc_mode))
        fanout.join(self._consumer)

    async def _serve_hls(self, head: HttpRequestHead, req: MediaRequest) -> None:
        path, peer = canonical_path(req.path), self._peer()
        client = peer.rsplit(":", 1)[0]
        viewers, token = self.front.hls_viewers, head.query.get("token", "")
        viewer = viewers.get(path, peer, token)
        ticket = None
        if viewer is None:  # a new viewer is a new player: limits, drain
            ticket = await self.front.admit_player(path, peer, viewers.tree_key(path, peer, token))
        try:
            if req.kind == "m3u8":
                answer = await hls.playlist(self.front, head, path, client)
            elif req.kind == "ts":
                answer = hls.ts_segment(self.front, path, req.segment)
            else:
                answer = await hls.fmp4_file(self.front, path, req.name, client)
        except BaseException:
            if ticket is not None:  # not served: not a viewer
                ticket.release()
            raise
        if viewer is None:
            viewer = viewers.add(path, peer, token, ticket)
        answer_head, body = answer
        if head.method == "HEAD":  # the same head (Content-Length too), no body: RFC 9110 9.3.2
            body = b""
        viewers.seen(viewer, 0, len(answer_head) + len(body))
        self._write_close(answer_head, body)

    def _peer(self) -> str:
        assert self._transport is not None
        peer = self._transport.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if peer else ""

    def _on_player_bytes(self, data: bytes) -> None:
        """A player talks only to close (WebSocket) or not at all (HTTP)."""
        c = self._consumer
        assert c is not None
        c.inbytes += len(data)
        if self._ws is None:
            return
        try:
            self._ws.feed(data)
            while (ev := self._ws.next_event()) is not None:
                if isinstance(ev, WsPing):
                    c.write_direct(encode_frame(ev.data, opcode=PONG))
                elif isinstance(ev, WsClose):
                    c.write_direct(encode_close())
                    c.close()
                    return
        except ProtocolError as e:
            c.write_direct(encode_close(close_code_for(e)))
            c.close()

    def _respond_error(self, e: HubError) -> None:
        self._write_close(http_error_response(e))

    def _write_close(self, data: bytes, body: bytes | array[int] = b"") -> None:
        """Write and close; a `body` apart is queued as it is, not copied
        (an HLS segment's buffer is shared by every request for it). The
        answer to a HEAD is its head alone (RFC 9110 9.3.2), errors too."""
        if self._head_only:
            data, body = data[:data.find(b"\r\n\r\n") + 4], b""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            if body:
                self._transport.write(memoryview(body))  # queued as it is (uvloop): no copy
            close_when_sent(self._transport)
