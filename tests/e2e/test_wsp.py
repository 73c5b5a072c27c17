"""WSP (Streamedian): INIT / JOIN / WRAP(OPTIONS, DESCRIBE, SETUP x2, PLAY) /
TEARDOWN as the reference transcript, RTP on the data socket one `$` packet
per message, decoded by PyAV. With two fronts the data socket often lands on
the other front than the control socket; several sessions cover both."""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from hub.media.wsp import WspRequest, WspResponse
from tests.conftest import HubServer
from tests.e2e.test_rtsp_ws import H264Sink, body_of, header_of, rtsp_request, status_of
from tests.e2e.tools import Pusher

pytestmark = pytest.mark.e2e


def wsp(verb: str, seq: int, payload: str = "", **headers: str) -> str:
    lines = [f"WSP/1.1 {verb}", *(f"{k}: {v}" for k, v in headers.items()), f"seq: {seq}"]
    return "\r\n".join(lines) + "\r\n\r\n" + payload


def reply(ws: Any) -> WspResponse:
    while True:
        r = ws.recv(timeout=5)
        if isinstance(r, str):
            return WspResponse.parse(r.encode())


def _connect(hub: HubServer, proto: str, path: str = "/streams/live/wsp") -> Any:
    from websockets.sync.client import connect

    ws = connect(f"ws://127.0.0.1:{hub.port}{path}", subprotocols=[proto], open_timeout=5, max_size=None,
                 max_queue=None)  # unread RTP must not hold back the closing handshake
    assert ws.subprotocol == proto
    return ws


def _session(hub: HubServer, frames: int) -> None:
    url = f"rtsp://127.0.0.1:{hub.port}/live/wsp"
    with _connect(hub, "control") as ctl, _connect(hub, "data") as data:
        ctl.send(wsp("INIT", 1, proto="rtsp", host="127.0.0.1", port=str(hub.port)))
        r = reply(ctl)
        assert (r.status, r.header("seq")) == (200, "1")
        channel = r.header("channel")
        assert channel and channel.isdigit()
        data.send(wsp("JOIN", 1, channel=channel))
        r = reply(data)
        assert (r.status, r.header("seq")) == (200, "1")

        def wrap(seq: int, text: str) -> str:
            ctl.send(wsp("WRAP", seq, text))
            r = reply(ctl)
            assert (r.status, r.header("seq")) == (200, str(seq))
            return r.payload.decode()

        rr = wrap(2, rtsp_request("OPTIONS", url, 1))
        assert status_of(rr) == 200
        rr = wrap(3, rtsp_request("DESCRIBE", url, 2, "Accept: application/sdp"))
        assert status_of(rr) == 200
        sdp = body_of(rr)
        rr = wrap(4, rtsp_request("SETUP", url + "/trackID=0", 3, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"))
        assert status_of(rr) == 200 and "interleaved=0-1" in header_of(rr, "Transport")
        session = header_of(rr, "Session").split(";")[0]
        rr = wrap(5, rtsp_request("SETUP", url + "/trackID=1", 4,
                                  "Transport: RTP/AVP/TCP;unicast;interleaved=2-3", f"Session: {session}"))
        assert status_of(rr) == 200 and "interleaved=2-3" in header_of(rr, "Transport")
        ctl.send(wsp("GET_INFO", 6))
        assert reply(ctl).status == 200
        rr = wrap(7, rtsp_request("PLAY", url, 5, f"Session: {session}"))
        assert status_of(rr) == 200
        sink = H264Sink(sdp)
        deadline = time.monotonic() + 15
        while sink.frames < frames and time.monotonic() < deadline:
            msg = data.recv(timeout=5)
            assert isinstance(msg, bytes)
            sink.feed_message(msg)
        assert sink.frames >= frames and sink.size == (640, 360), (sink.frames, sink.depack.stats)
        rr = wrap(8, rtsp_request("TEARDOWN", url, 6, f"Session: {session}"))
        assert status_of(rr) == 200 and header_of(rr, "CSeq") == "6"


def test_wsp_plays(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/wsp")
    _session(hub, 25)
    # The kernel picks the front of each socket: more sessions until a JOIN
    # has been handed to the control socket's front at least once (each has
    # a 1 in 2 chance with two fronts; the first session may have been local).
    sessions = 1
    while "handed over by another front" not in hub.log() and sessions < 12:
        _session(hub, 3)
        sessions += 1
    assert "handed over by another front" in hub.log()
    deadline = time.monotonic() + 5
    while (wsp_stats := hub.get_json("/api/v1/runtime")["wsp"])["active"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the last session's sockets are still closing
    assert wsp_stats == {"total": sessions, "active": 0}


def test_wsp_bad_input(hub: HubServer, push: Callable[..., Pusher]) -> None:
    from websockets.exceptions import ConnectionClosed

    push("/live/wsp")
    with _connect(hub, "control") as ctl:
        # WRAP before INIT: no channel.
        ctl.send(wsp("WRAP", 1, rtsp_request("OPTIONS", "rtsp://x/live/wsp", 1)))
        assert (r := reply(ctl)).status == 404 and r.header("seq") == "1"
        ctl.send(wsp("INIT", 2, proto="rtsp"))
        assert reply(ctl).status == 200
        # A WRAP of garbage RTSP: the RTSP 400 comes back wrapped, the session lives on.
        ctl.send(wsp("WRAP", 3, "NOT RTSP AT ALL\r\n\r\n"))
        r = reply(ctl)
        assert (r.status, r.header("seq")) == (200, "3") and r.payload.startswith(b"RTSP/1.0 400 Bad Request\r\n")
        assert b"CSeq" not in r.payload and r.payload.endswith(b"\r\nServer: ipchub-py\r\n\r\n")
        # Garbage that names its CSeq gets it back (the browser matches answers by CSeq).
        ctl.send(wsp("WRAP", 33, "NOT RTSP\r\nCSeq: 12\r\n\r\n"))
        r = reply(ctl)
        assert r.header("seq") == "33" and r.payload.startswith(b"RTSP/1.0 400 Bad Request\r\nCSeq: 12\r\n")
        ctl.send(wsp("WRAP", 4, rtsp_request("OPTIONS", "rtsp://x/live/wsp", 7)))
        r = reply(ctl)
        assert r.status == 200 and status_of(r.payload.decode()) == 200
        # Unparsable but with a readable seq: 400 with that seq, still open.
        ctl.send("WSP/1.1 INIT\r\nbroken header\r\nseq: 5\r\n\r\n")
        assert bytes(reply(ctl)) == b"WSP/1.1 400 Bad Request\r\nseq: 5\r\n\r\n"
        # Wrong channel on WRAP.
        ctl.send(wsp("WRAP", 6, rtsp_request("OPTIONS", "rtsp://x/live/wsp", 8), channel="999999"))
        assert reply(ctl).status == 404
        # No seq at all: 400 and closed.
        ctl.send("garbage")
        assert bytes(reply(ctl)) == b"WSP/1.1 400 Bad Request\r\n\r\n"
        with pytest.raises(ConnectionClosed):
            ctl.recv(timeout=5)
    # JOIN of a channel nobody holds (on any front): 404 and closed.
    with _connect(hub, "data") as data:
        data.send(wsp("JOIN", 1, channel="123456789"))
        assert bytes(reply(data)) == b"WSP/1.1 404 Not Found\r\nseq: 1\r\n\r\n"
        with pytest.raises(ConnectionClosed):
            data.recv(timeout=5)
    with _connect(hub, "data") as data:
        data.send(wsp("JOIN", 1))
        assert bytes(reply(data)) == b"WSP/1.1 400 Bad Request\r\nseq: 1\r\n\r\n"


def test_wsp_request_helper_is_wsp() -> None:
    assert bytes(WspRequest.parse(wsp("JOIN", 1, channel="3").encode())) == \
        b"WSP/1.1 JOIN\r\nchannel: 3\r\nseq: 1\r\n\r\n"

