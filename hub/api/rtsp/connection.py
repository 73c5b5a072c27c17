"""RTSP on a front: players, and the publish hand-off, over any transport
that carries RTSP (plain TCP; WSP, RTSP over WebSocket and the HTTP tunnel
through their adapter transports).

The protocol is the sans-IO engine (`hub.media.rtsp.server`) under the
shared glue (`hub.rtsp_glue`); this module only decides. DESCRIBE opens
the stream's view (the owning shard answers with its description), SETUP
picks a transport per track (`hub.api.play.rtp.RtpPlayer`), PLAY joins the
view's RTP fan-out. A publisher is not served here: at ANNOUNCE the
connection (socket, the ANNOUNCE as received and every byte read after it,
`take_buffered`) is handed to the shard that owns the path, whose own
engine reads on from exactly there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...client_key import is_ipv6
from ...errors import Forbidden, HubError, MethodNotValidInState, NotFound, Unauthorized, UnsupportedTransport
from ...ipc import messages as M
from ...ipc.handoff import send_socket
from ...media.rtsp.events import (Announce, Describe, GetParameter, Options, Pause, Play, RtspRequestEvent,
                                  SetParameter, Setup, Teardown, control_after_query)
from ...media.rtsp.state import RtspRole, RtspState
from ...media.sdp import for_ipv6_player
from ...placement import canonical_path
from ...rate import TokenBucket
from ...rtsp_glue import Pending, RtspServerProtocol
from ..play.consumer import cap_send_buffer, peer_address
from ..play.rtp import RtpPlayer
from ..play.views import StreamView
from .challenge import StaleNonce

if TYPE_CHECKING:
    from ..context import FrontContext


#: `$` frames a player may send (its RTCP receiver reports: a few a second;
#: nothing else of a player's is read): a token bucket of this many, refilled
#: at PLAYER_FRAME_RATE a second; past it the connection is closed. Each
#: frame costs the loop ~2 us however small it is (4-byte frames: ~450 ns a
#: byte, a 256 KiB read 118 ms).
PLAYER_FRAME_BURST = 1024
PLAYER_FRAME_RATE = 256.0


def split_control(path: str) -> tuple[str, int | None]:
    """A SETUP URI names a track as a trailing `trackID=N` (our SDP's controls)."""
    head, _, last = path.rpartition("/")
    if last.startswith("trackid="):
        try:
            return (head or "/"), int(last[len("trackid="):])
        except ValueError:
            raise NotFound("unknown track") from None
    return path, None


class RtspConnection(RtspServerProtocol):
    """`kind` names the counters and the consumers' `net=`: "rtsp" for a plain
    connection; "rtsp-ws", "wsp", "rtsp-http" when a browser path drives this
    session over an adapter transport (hub.api.rtsp.ws_transport). Those are
    players only: their socket cannot be handed to a shard, so ANNOUNCE is
    455 there. `token_path`: a path whose pull right was already proven (a
    WebSocket's ?token=). `opened_at`: when the sniffer read the first byte."""

    log = logging.getLogger("hub.api.rtsp")

    def __init__(self, front: FrontContext, kind: str = "rtsp", *, token_path: str | None = None,
                 opened_at: float | None = None) -> None:
        super().__init__(role=RtspRole.ANY if kind == "rtsp" else RtspRole.PLAYER,
                         session_timeout=float(front.config.rtsp_session_timeout),
                         challenge=self._challenges, opened_at=opened_at)
        self.front = front
        self.kind = kind
        self.token_path = token_path
        self.view: StreamView | None = None
        self.player: RtpPlayer | None = None
        self.user = ""  # whose credentials passed (auth on)
        self.channels = [self._player_frame] * 256
        self._frames = TokenBucket(PLAYER_FRAME_BURST, PLAYER_FRAME_RATE, self.clock())

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        c = self.front.counters
        if self.kind == "wsp":
            c.wsp_total += 1
            c.wsp_active += 1
        else:
            c.rtsp_total += 1
            c.rtsp_active += 1
        cap_send_buffer(transport)  # its answers, like its media, queue here where we see them
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.kind == "wsp":
            self.front.counters.wsp_active -= 1
        else:
            self.front.counters.rtsp_active -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.player is not None:
            self.player.consumer.inbytes += len(data)
        super().data_received(data)

    def _player_frame(self, _payload: bytes | bytearray | memoryview) -> None:
        """A `$` frame from the player (dropped): counted against its bucket."""
        if not self._frames.take(self.clock()):
            if not self.closed:
                self.log.info("closing an RTSP connection: more than %d interleaved frames at %.0f a second",
                              PLAYER_FRAME_BURST, PLAYER_FRAME_RATE)
                self.close()

    def close(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
        super().close()

    # -- requests ------------------------------------------------------------------
    def on_request(self, event: RtspRequestEvent) -> Pending:
        if isinstance(event, (Options, GetParameter, SetParameter)):
            self.reply(event)
        elif isinstance(event, Pause):
            if self.player is not None:
                self.player.pause()
            self.reply(event)
        elif isinstance(event, Teardown):
            self.reply(event)  # the engine ends the session and the connection
        elif isinstance(event, Describe):
            return self._describe(event)
        elif isinstance(event, Setup):
            return self._setup(event)
        elif isinstance(event, Play):
            return self._play(event)
        elif isinstance(event, Announce):
            return self._hand_off(event)
        else:
            raise MethodNotValidInState(f"{event.method.value} is not served on a front")
        return None

    def _challenges(self, exc: HubError) -> Sequence[str]:
        return [self.front.rtsp_auth.challenge(stale=isinstance(exc, StaleNonce))]

    async def _authorize(self, event: RtspRequestEvent, push: bool) -> None:
        """With `auth` on: Digest (or Basic) credentials, computed for this
        request's URI, with the right for the path it serves (a SETUP's or
        PLAY's track URL: its stream's); 401 (challenge again) or 403."""
        if not self.front.config.auth:
            return
        path = canonical_path(event.path)  # the path DESCRIBE and ANNOUNCE serve
        if isinstance(event, (Setup, Play)):  # these may name a track: its stream's
            path, _track = split_control(path)
        if not push and path == self.token_path:
            return
        req = event.request
        try:
            user = await self.front.rtsp_auth.user(self.front.users, req.headers.get("Authorization"), req.method,
                                                   req.uri)
        except Unauthorized:
            if req.headers.get("Authorization"):  # not the first challenge: wrong credentials
                self.front.counters.login_failures += 1
            raise
        self.user = user.name
        if not (user.can_push(path) if push else user.can_pull(path)):
            raise Forbidden(f"{user.name} may not {'push' if push else 'pull'} {path}")

    def _base_url(self, event: RtspRequestEvent) -> str:
        path, _track = split_control(canonical_path(event.path))
        return f"rtsp://{event.host.rpartition('@')[2] or '127.0.0.1'}{path}"

    async def _describe(self, event: Describe) -> None:
        await self._authorize(event, push=False)
        view = await self.front.views.open(canonical_path(event.path))
        sdp = view.desc.sdp
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        if peer and is_ipv6(peer[0]):
            sdp = for_ipv6_player(sdp)
        self.reply(event, headers=[("Content-Base", self._base_url(event) + "/"),
                                   ("Content-Type", "application/sdp")], body=sdp.encode())

    async def _setup(self, event: Setup) -> None:
        await self._authorize(event, push=False)
        path, track = split_control(canonical_path(event.path))
        moved = control_after_query(event.path, event.query) if track is None else None
        if moved is not None:  # `rtsp://h/live/a?k=v/trackID=0`: the URL's query, then our control
            moved_path, moved_track = split_control(canonical_path(moved))
            if moved_track is not None:
                path, track = moved_path, moved_track
        view = self.view
        if view is None:
            view = await self.front.views.open(path)
        elif view.desc.path != path:
            raise MethodNotValidInState("SETUP of another stream in one session")
        if track is None:
            if len(view.desc.tracks) != 1:
                raise NotFound("SETUP needs a track URL")
            track = 0
        if not 0 <= track < len(view.desc.tracks):
            raise NotFound("unknown track")
        spec = next((s for s in event.transport.specs if not s.is_record), None)
        if spec is None:
            raise UnsupportedTransport("only RTP/AVP play transports are served here")
        player = self.player
        if player is None:
            assert self.transport is not None
            ticket = await self.front.admit_player(view.desc.path, peer_address(self.transport))
            peer = self.transport.get_extra_info("peername")
            player = RtpPlayer(self.front.rtp_ports, view, self.transport, peer[0] if peer else "127.0.0.1",
                               on_feedback=self._feedback)
            player.consumer.ticket = ticket
            player.consumer.user = self.user
        try:
            answer = player.setup(track, spec)
        except Exception:
            if player is not self.player:
                player.close()  # refused: nothing of it stays
            raise
        if self.kind != "rtsp":
            player.consumer.extra = f"net={self.kind}"
        self.view, self.player = view, player
        self.reply(event, headers=[("Transport", str(answer))])

    def _feedback(self) -> None:
        """RTCP from the player over UDP: the session is alive."""
        self.engine.touch(self.clock())

    async def _play(self, event: Play) -> None:
        await self._authorize(event, push=False)
        player = self.player
        assert player is not None  # the engine lets PLAY through only after a SETUP
        headers = []
        if self.engine.state is not RtspState.PLAYING:
            headers = [("Range", "npt=0.000-"), ("RTP-Info", player.rtp_info(self._base_url(event)))]
        self.reply(event, headers=headers)
        player.start()

    # -- publishing: hand the connection to the owning shard ------------------------
    async def _hand_off(self, event: Announce) -> None:
        await self._authorize(event, push=True)
        path = canonical_path(event.path)
        assert self.transport is not None
        remote = peer_address(self.transport)
        await self.front.admit_publisher(path, remote)  # the shard releases it at the session's end
        try:
            ch = await self.front.shards.channel_for(path)
            sock = self.transport.get_extra_info("socket")
            # The ANNOUNCE as received and everything after it, pipelined
            # requests included; the engine is done with the connection.
            already = event.raw + self.engine.take_buffered()
            s = socket.socket(fileno=os.dup(sock.fileno()))
            try:
                send_socket(ch, M.HANDOFF_RTSP({"path": path, "peer": remote, "user": self.user}), s, already)
            finally:
                s.close()
        except BaseException:
            self.front.release_publisher(path, remote)
            raise
        # Closing (the glue does, the engine being done) only drops this
        # process's fd; the shard's copy keeps the TCP connection open.
