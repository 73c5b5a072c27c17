"""RTSP over WebSocket (subprotocol `rtsp`): a Python client plays the pushed
stream, gets one `$` packet per binary message, and PyAV decodes the H.264."""

from __future__ import annotations

import base64
import re
import struct
import time
from typing import Callable

import pytest

from hub.media.access_unit import avcc_to_annexb
from hub.media.rtp import RtpPacket
from hub.media.rtp_h264 import H264Depacketizer
from tests.conftest import HubServer
from tests.e2e.tools import Pusher

pytestmark = pytest.mark.e2e


class H264Sink:
    """Depacketises channel-0 RTP and decodes it; counts frames."""

    def __init__(self, sdp: str) -> None:
        import av

        self.codec = av.CodecContext.create("h264", "r")
        self.depack = H264Depacketizer()
        self.frames = 0
        self.size = (0, 0)
        self.messages = 0
        m = re.search(r"sprop-parameter-sets=([^;\s]+)", sdp)
        self.params = b"".join(b"\0\0\0\1" + base64.b64decode(p) for p in m.group(1).split(",")) if m else b""

    def feed_message(self, msg: bytes) -> None:
        """One binary message: exactly one interleaved packet."""
        assert msg[0] == 0x24, msg[:8]
        assert len(msg) == 4 + struct.unpack_from(">H", msg, 2)[0], "one packet per message"
        self.messages += 1
        if msg[1] != 0:
            return
        for au in self.depack.push(RtpPacket.parse(msg[4:])):
            data = avcc_to_annexb(au.data)
            if au.keyframe:
                data = self.params + data
            for pkt in self.codec.parse(data):
                for f in self.codec.decode(pkt):
                    self.frames += 1
                    self.size = (f.width, f.height)


def rtsp_request(method: str, url: str, cseq: int, *headers: str) -> str:
    return "".join([f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n", *(h + "\r\n" for h in headers), "\r\n"])


def status_of(resp: str) -> int:
    assert resp.startswith("RTSP/1.0 "), resp[:80]
    return int(resp.split(" ", 2)[1])


def header_of(resp: str, name: str) -> str:
    m = re.search(rf"(?im)^{name}:\s*(.*?)\r?$", resp)
    assert m, (name, resp)
    return m.group(1)


def body_of(resp: str) -> str:
    return resp.split("\r\n\r\n", 1)[1]


def test_rtsp_over_websocket_plays(hub: HubServer, push: Callable[..., Pusher]) -> None:
    from websockets.sync.client import connect

    push("/live/rws")
    url = f"rtsp://127.0.0.1:{hub.port}/live/rws"
    with connect(f"ws://127.0.0.1:{hub.port}/streams/live/rws", subprotocols=["rtsp"],  # type: ignore[list-item]
                 open_timeout=5, max_size=None, max_queue=None) as ws:
        assert ws.subprotocol == "rtsp"

        def ask(text: str) -> str:
            ws.send(text)
            while True:
                r = ws.recv(timeout=5)
                if isinstance(r, str):
                    return r

        r = ask(rtsp_request("OPTIONS", url, 1))
        assert status_of(r) == 200 and "DESCRIBE" in header_of(r, "Public")
        r = ask(rtsp_request("DESCRIBE", url, 2, "Accept: application/sdp"))
        assert status_of(r) == 200 and header_of(r, "CSeq") == "2"
        sdp = body_of(r)
        assert "H264" in sdp
        r = ask(rtsp_request("SETUP", url + "/trackID=0", 3, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"))
        assert status_of(r) == 200 and "interleaved=0-1" in header_of(r, "Transport")
        session = header_of(r, "Session").split(";")[0]
        r = ask(rtsp_request("SETUP", url + "/trackID=1", 4, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3",
                             f"Session: {session}"))
        assert status_of(r) == 200
        r = ask(rtsp_request("PLAY", url, 5, f"Session: {session}"))
        assert status_of(r) == 200
        sink = H264Sink(sdp)
        deadline = time.monotonic() + 15
        while sink.frames < 25 and time.monotonic() < deadline:
            msg = ws.recv(timeout=5)
            assert isinstance(msg, bytes)
            sink.feed_message(msg)
        assert sink.frames >= 25 and sink.size == (640, 360), (sink.frames, sink.depack.stats)
        ws.send(rtsp_request("TEARDOWN", url, 6, f"Session: {session}"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = ws.recv(timeout=5)
            if isinstance(r, str):
                assert status_of(r) == 200 and header_of(r, "CSeq") == "6"
                break


def test_rtsp_over_websocket_bad_input(hub: HubServer, push: Callable[..., Pusher]) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    base = f"ws://127.0.0.1:{hub.port}/streams/live/nothing"
    with connect(base, subprotocols=["rtsp"], open_timeout=5) as ws:  # type: ignore[list-item]
        ws.send(rtsp_request("DESCRIBE", f"rtsp://127.0.0.1:{hub.port}/live/nothing", 1))
        assert status_of(ws.recv(timeout=5)) == 404  # type: ignore[arg-type]
        ws.send(rtsp_request("ANNOUNCE", f"rtsp://127.0.0.1:{hub.port}/live/nothing", 2))
        assert status_of(ws.recv(timeout=5)) == 455  # type: ignore[arg-type]
        ws.send("GARBAGE\r\n\r\n")
        assert status_of(ws.recv(timeout=5)) == 400  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    # No known subprotocol: the path is not a stream of ours (404 as before).
    import websockets

    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        connect(base, open_timeout=5)
    assert e.value.response.status_code == 404
