"""Shared helpers for the RtspServerConnection tests: wire requests by hand,
drive an engine to a state, read its answers back with our own reader."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from hub.errors import HubError
from hub.media.rtsp import NEED_DATA, InterleavedFrame, RtspReader, RtspResponse
from hub.media.rtsp.events import RtspRequestEvent
from hub.media.rtsp.server import RtspServerConnection
from hub.media.rtsp.state import RtspRole, RtspState

#: 1994-11-06 08:49:37 UTC, RFC 7231's example date.
WALL = 784111777.0
DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
SEED = 7
SESSION = random.Random(SEED).randbytes(8).hex()

SDP = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
TCP_PLAY = "RTP/AVP/TCP;unicast;interleaved=0-1"
TCP_RECORD = "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"

Event = RtspRequestEvent | InterleavedFrame


def make(role: RtspRole = RtspRole.ANY, handed_over: bool = False, now: float = 0.0,
         challenge: Callable[[HubError], Sequence[str]] | None = None, session_timeout: float = 60.0,
         request_timeout: float = 10.0) -> RtspServerConnection:
    return RtspServerConnection(now=now, random_bytes=random.Random(SEED).randbytes, role=role,
                                handed_over=handed_over, wall_clock=lambda: WALL, challenge=challenge,
                                session_timeout=session_timeout, request_timeout=request_timeout)


def wire(method: str, uri: str = "rtsp://127.0.0.1:1554/live/a", cseq: int | None = 1,
         headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {uri} RTSP/1.0"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request_for(method: str, cseq: int = 1, session: str | None = None) -> bytes:
    """A well-formed request of `method` (with what it needs: a Transport,
    an SDP body), carrying `session` when given."""
    headers: list[tuple[str, str]] = []
    body = b""
    uri = "rtsp://127.0.0.1:1554/live/a"
    if method == "SETUP":
        uri += "/trackID=0"
        headers.append(("Transport", TCP_PLAY))
    if method == "ANNOUNCE":
        headers.append(("Content-Type", "application/sdp"))
        body = SDP
    if session is not None:
        headers.append(("Session", session))
    return wire(method, uri, cseq, headers, body)


def drain(conn: RtspServerConnection) -> list[Event]:
    out: list[Event] = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def responses(data: bytes | list[bytes]) -> list[RtspResponse]:
    """The answers in `data`; a list (from data_to_send) holds one each."""
    if isinstance(data, list):
        out = []
        for item in data:
            [one] = responses(item)
            out.append(one)
        return out
    reader = RtspReader()
    reader.feed(data)
    out = []
    for ev in reader.events():
        assert isinstance(ev, RtspResponse)
        out.append(ev)
    assert reader.buffered == 0
    return out


def one_event(conn: RtspServerConnection, data: bytes, now: float = 0.0) -> RtspRequestEvent:
    conn.receive_data(data, now)
    [ev] = drain(conn)
    assert isinstance(ev, RtspRequestEvent)
    return ev


def accept(conn: RtspServerConnection, data: bytes, now: float = 0.0) -> RtspResponse:
    """Feed one request, answer its event 200; the parsed answer."""
    ev = one_event(conn, data, now)
    [resp] = responses(conn.respond(ev))
    assert resp.status == 200
    return resp


#: How each state is reached, and the role the connection has there.
PATHS: dict[RtspState, tuple[RtspRole, list[str]]] = {
    RtspState.INIT: (RtspRole.ANY, []),
    RtspState.ANNOUNCED: (RtspRole.PUBLISHER, ["ANNOUNCE"]),
    RtspState.RECORD_READY: (RtspRole.PUBLISHER, ["ANNOUNCE", "SETUP"]),
    RtspState.RECORDING: (RtspRole.PUBLISHER, ["ANNOUNCE", "SETUP", "RECORD"]),
    RtspState.READY: (RtspRole.PLAYER, ["SETUP"]),
    RtspState.PLAYING: (RtspRole.PLAYER, ["SETUP", "PLAY"]),
}


def drive(state: RtspState) -> RtspServerConnection:
    conn = make()
    role, methods = PATHS[state]
    for i, method in enumerate(methods):
        data = request_for(method, cseq=i + 1, session=conn.session_id)
        if method == "SETUP" and role is RtspRole.PUBLISHER:
            data = data.replace(TCP_PLAY.encode(), TCP_RECORD.encode())
        accept(conn, data)
    assert conn.state is state and conn.role is role
    return conn
