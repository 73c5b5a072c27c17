"""RTSP on a front: players (DESCRIBE/SETUP/PLAY...) and the publish hand-off.

A player is served here, by the front that accepted it: DESCRIBE opens the
stream's view (the owning shard answers with its description), SETUP picks a
transport per track, PLAY joins the view's RTP fan-out. A publisher is not
served here: at ANNOUNCE the connection (socket and the bytes already read)
is handed to the shard that owns the path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...errors import (Forbidden, HubError, MethodNotValidInState, NotFound, ProtocolError, SessionNotFound,
                      Unauthorized, UnsupportedTransport)
from ...ipc.handoff import send_socket
from ...media.rtsp import NEED_DATA, Headers, InterleavedFrame, RtspReader, RtspRequest, RtspResponse
from ...media.rtsp.state import RtspServerSession, RtspState, new_session_id
from ...media.rtsp.transport import Transport
from ...placement import canonical_path
from ..play.consumer import Consumer, peer_address
from ..play.rtp import RtpPlayer
from ..play.views import StreamView

if TYPE_CHECKING:
    from ..context import FrontContext

log = logging.getLogger("hub.api.rtsp")

PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, ANNOUNCE, RECORD, GET_PARAMETER, SET_PARAMETER"
SESSION_TIMEOUT = 60
#: Requests a client may have queued while one is being answered.
MAX_QUEUED = 16


def stream_path_of(uri: str) -> str:
    """`rtsp://host:port/live/x/trackID=0` -> ("/live/x"), canonical."""
    path = urlsplit(uri).path if "://" in uri else uri
    return canonical_path(path)


def split_control(path: str) -> tuple[str, int | None]:
    """A SETUP URI names a track as a trailing `trackID=N` (our SDP's controls)."""
    head, _, last = path.rpartition("/")
    if last.startswith("trackid="):
        try:
            return (head or "/"), int(last[len("trackid="):])
        except ValueError:
            raise NotFound("unknown track") from None
    return path, None


class RtspConnection(asyncio.Protocol):
    """`kind` names the counters and the consumers' `net=`: "rtsp" for a plain
    connection; "rtsp-ws", "wsp", "rtsp-http" when a browser path drives this
    session over an adapter transport (hub.api.rtsp.ws_transport). Those cannot publish:
    their socket cannot be handed to a shard."""

    def __init__(self, front: FrontContext, kind: str = "rtsp") -> None:
        self.front = front
        self.kind = kind
        self.can_publish = kind == "rtsp"
        #: A path whose pull right was already proven (a WebSocket's ?token=).
        self.token_path: str | None = None
        self.reader = RtspReader()
        self.transport: asyncio.Transport | None = None
        self._queue: asyncio.Queue[RtspRequest] = asyncio.Queue(MAX_QUEUED)
        self._task: asyncio.Task[None] | None = None
        self._after_announce = b""
        self.session: RtspServerSession | None = None
        self.view: StreamView | None = None
        self.player: RtpPlayer | None = None
        self.consumer: Consumer | None = None
        self.playing = False
        self.user = ""  # whose credentials passed (auth on)

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        c = self.front.counters
        if self.kind == "wsp":
            c.wsp_total += 1
            c.wsp_active += 1
        else:
            c.rtsp_total += 1
            c.rtsp_active += 1
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.kind == "wsp":
            self.front.counters.wsp_active -= 1
        else:
            self.front.counters.rtsp_active -= 1
        if self._task is not None:
            self._task.cancel()
        self._teardown()

    def data_received(self, data: bytes) -> None:
        if self.consumer is not None:
            self.consumer.inbytes += len(data)
        try:
            self.reader.feed(data)
            while (ev := self.reader.next_event()) is not NEED_DATA:
                if isinstance(ev, RtspRequest):
                    try:
                        self._queue.put_nowait(ev)
                    except asyncio.QueueFull:
                        raise ProtocolError("too many pipelined requests") from None
                    if ev.method == "ANNOUNCE" and self.can_publish:
                        self._pause()
                        return
                elif isinstance(ev, InterleavedFrame):
                    pass  # RTCP receiver reports from players
        except ProtocolError as e:
            self._reply_and_close(RtspResponse(400, headers=_headers(None)), str(e))

    def _pause(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    # -- request loop ------------------------------------------------------------
    async def _serve(self) -> None:
        while True:
            req = await self._queue.get()
            cseq = req.headers.get("CSeq")
            try:
                resp = await self._dispatch(req)
            except HubError as e:
                resp = RtspResponse(e.rtsp_status, headers=_headers(cseq))
                if e.rtsp_status == 401:
                    resp.headers.add("WWW-Authenticate", self.front.rtsp_auth.challenge())
                if e.rtsp_status >= 500:
                    log.warning("%s %s failed: %s", req.method, req.uri, e)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s %s failed", req.method, req.uri)
                resp = RtspResponse(500, headers=_headers(cseq))
            if resp is None:
                return  # handed off
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(bytes(resp))
            if req.method == "ANNOUNCE" and self.can_publish:
                # Refused (401 before credentials, 403...): the client may try again.
                self.transport.resume_reading()
            if req.method == "PLAY" and resp.status == 200 and self.player is not None:
                self.player.start()
                self.playing = True
            if req.method == "TEARDOWN":
                self.transport.close()
                return

    async def _dispatch(self, req: RtspRequest) -> RtspResponse | None:
        m = req.method
        cseq = req.headers.get("CSeq")
        if m == "OPTIONS":
            h = _headers(cseq)
            h.add("Public", PUBLIC)
            return RtspResponse(200, headers=h)
        if m in ("ANNOUNCE", "DESCRIBE", "SETUP", "PLAY"):
            await self._authorize(req, push=(m == "ANNOUNCE"))
        if m == "ANNOUNCE":
            if not self.can_publish:
                raise MethodNotValidInState(f"no publishing over {self.kind}")
            await self._hand_off(req)
            return None
        if m == "DESCRIBE":
            return await self._describe(req, cseq)
        if m == "SETUP":
            return await self._setup(req, cseq)
        if m in ("PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER", "RECORD"):
            sid = (req.headers.get("Session", "") or "").split(";", 1)[0].strip()
            session = self.session
            if m in ("GET_PARAMETER", "SET_PARAMETER") and not sid:
                return RtspResponse(200, headers=_headers(cseq))
            if session is None:
                raise MethodNotValidInState(f"{m} before SETUP")
            if sid != session.id:
                raise SessionNotFound(f"unknown session {sid!r}")
            session.check(m)
            h = self._session_headers(cseq)
            if m == "PLAY":
                assert self.player is not None
                if session.state is not RtspState.PLAYING:
                    h.add("Range", "npt=0.000-")
                    h.add("RTP-Info", self.player.rtp_info(self._base_url(req)))
            elif m == "PAUSE":
                if self.player is not None:
                    self.player.pause()
                self.playing = False
            elif m == "TEARDOWN":
                self._teardown()
            session.apply(m, time.monotonic())
            return RtspResponse(200, headers=h)
        raise MethodNotValidInState(f"{m} is not supported here")

    async def _authorize(self, req: RtspRequest, push: bool) -> None:
        """With `auth` on: Digest (or Basic) credentials with the right for the
        path; 401 (challenge again) or 403."""
        if not self.front.config.auth:
            return
        path, _track = split_control(stream_path_of(req.uri.split("?", 1)[0]))
        if not push and path == self.token_path:
            return
        try:
            user = await self.front.rtsp_auth.user(self.front.users, req.headers.get("Authorization"), req.method)
        except Unauthorized:
            if req.headers.get("Authorization"):  # not the first challenge: wrong credentials
                self.front.counters.login_failures += 1
            raise
        self.user = user.name
        if not (user.can_push(path) if push else user.can_pull(path)):
            raise Forbidden(f"{user.name} may not {'push' if push else 'pull'} {path}")

    # -- DESCRIBE / SETUP ----------------------------------------------------------
    def _base_url(self, req: RtspRequest) -> str:
        uri = req.uri.split("?", 1)[0]
        path, _track = split_control(stream_path_of(uri))
        parts = urlsplit(uri)
        host = parts.netloc.split("@")[-1] or "127.0.0.1"
        return f"rtsp://{host}{path}"

    async def _describe(self, req: RtspRequest, cseq: str | None) -> RtspResponse:
        path = stream_path_of(req.uri.split("?", 1)[0])
        view = await self.front.views.open(path)
        h = _headers(cseq)
        base = self._base_url(req) + "/"
        h.add("Content-Base", base)
        h.add("Content-Type", "application/sdp")
        return RtspResponse(200, headers=h, body=view.desc.sdp.encode())

    async def _setup(self, req: RtspRequest, cseq: str | None) -> RtspResponse:
        if self.session is not None:
            self.session.check("SETUP")
        path, track = split_control(stream_path_of(req.uri.split("?", 1)[0]))
        if self.view is None:
            self.view = await self.front.views.open(path)
        elif self.view.desc.path != path:
            raise MethodNotValidInState("SETUP of another stream in one session")
        view = self.view
        if track is None:
            if len(view.desc.tracks) != 1:
                raise NotFound("SETUP needs a track URL")
            track = 0
        if not 0 <= track < len(view.desc.tracks):
            raise NotFound("unknown track")
        text = req.headers.get("Transport")
        if not text:
            raise UnsupportedTransport("no Transport header")
        try:
            spec = next((s for s in Transport.parse(text).specs if s.protocol.startswith("RTP/AVP")), None)
        except ProtocolError:
            raise UnsupportedTransport("unreadable Transport header") from None
        if spec is None or spec.is_record:
            raise UnsupportedTransport("only RTP/AVP play transports are served here")
        if self.session is None:
            self.session = RtspServerSession(new_session_id(os.urandom), time.monotonic(), SESSION_TIMEOUT)
        self.session.check("SETUP")
        if self.player is None:
            assert self.transport is not None
            ticket = await self.front.admit_player(view.desc.path, peer_address(self.transport))
            peer = self.transport.get_extra_info("peername")
            self.player = RtpPlayer(self.front.rtp_ports, view, self.transport, peer[0] if peer else "127.0.0.1")
            self.player.consumer.ticket = ticket
            self.player.consumer.user = self.user
        answer = self.player.setup(track, spec)
        if self.kind != "rtsp":
            self.player.consumer.extra = f"net={self.kind}"
        self.session.apply("SETUP", time.monotonic())
        h = self._session_headers(cseq)
        h.add("Transport", str(answer))
        return RtspResponse(200, headers=h)

    def _session_headers(self, cseq: str | None) -> Headers:
        h = _headers(cseq)
        assert self.session is not None
        h.add("Session", self.session.header)
        return h

    # -- publishing: hand the connection to the owning shard ------------------------
    async def _hand_off(self, req: RtspRequest) -> None:
        assert self.transport is not None
        path = stream_path_of(req.uri.split("?", 1)[0])
        remote = peer_address(self.transport)
        await self.front.admit_publisher(path, remote)  # the shard releases it at the session's end
        try:
            ch = await self.front.shards.channel_for(path)
            # The ANNOUNCE (its wire form again) and whatever came after it.
            already = bytes(req) + self._after_announce
            sock = self.transport.get_extra_info("socket")
            s = socket.socket(fileno=os.dup(sock.fileno()))
            try:
                send_socket(ch, "handoff_rtsp", {"path": path, "peer": remote, "user": self.user}, s, already)
            finally:
                s.close()
        except BaseException:
            self.front.release_publisher(path, remote)
            raise
        # close() only drops this process's fd; the shard's copy keeps the
        # TCP connection open (no shutdown is sent).
        self.transport.close()

    # -- closing -----------------------------------------------------------------
    def _reply_and_close(self, resp: RtspResponse, why: str) -> None:
        log.info("closing RTSP connection: %s", why)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(resp))
            self.transport.close()

    def _teardown(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
        self.playing = False


def _headers(cseq: str | None) -> Headers:
    h = Headers()
    if cseq is not None:
        h.add("CSeq", cseq)
    h.add("Server", "ipchub-py")
    return h
