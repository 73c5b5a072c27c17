"""The raw media protocol (`/streams/...flv`, `/ws/...flv`) driven through
connection_made / data_received / connection_lost on a fake transport, with
a real front context, views and fan-out: the answer's head, the FLV that
follows, WebSocket control frames, and what a hang-up releases."""

from __future__ import annotations

import base64

from hub.api.play.http import MediaHttpProtocol
from hub.media.flv import FlvHeader
from hub.media.websocket import CLOSE, CLOSE_NORMAL, PING, PONG, accept_key

from .fakes import (FakeTransport, OneShard, Stream, client_frame, flv_events, make_front, media, run, until,
                    ws_frames, ws_messages)


def split_head(data: bytes) -> tuple[list[str], bytes]:
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    return head.decode("latin-1").split("\r\n"), rest


def test_http_flv_head_then_frames_and_a_hang_up_releases_everything(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        front = make_front(shard)
        t = FakeTransport()
        proto = MediaHttpProtocol(front)
        t.connect(proto)
        request = b"GET /streams/live/x.flv HTTP/1.1\r\nHost: h\r\n\r\n"
        for i in range(len(request)):  # in pieces: nothing happens before the head is whole
            proto.data_received(request[i:i + 1])
        await until(lambda: front.counters.flv_active == 1)
        lines, body = split_head(t.take())
        assert lines[0] == "HTTP/1.1 200 OK"
        assert "Content-Type: video/x-flv" in lines and "Cache-Control: no-cache" in lines
        assert not any(h.lower().startswith("content-length") for h in lines), "delimited by close"
        assert flv_events(body)[0] == FlvHeader(1, True, True)
        _, k = stream.video(True, 0)
        front.views.on_wake({stream.stream_id: 1})
        body += t.take()
        assert media(flv_events(body)[1:]) == [("video", 0, True, k)]
        assert front.counters.flv_total == 1 and shard.opens() == 1
        view = front.views.by_path["/live/x"]
        proto.data_received(b"ignored")  # an HTTP player says nothing that matters
        t.hang_up()
        assert front.counters.flv_active == 0 and view.closed and view.reader.closed
        assert shard.notices == [("release_stream", {"stream_id": stream.stream_id})]
        assert front.views.ended_out["/live/x"] == len(body) and front.views.ended["flv"] == 1

    run(main())


def test_websocket_flv_upgrade_ping_and_close(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        t = FakeTransport()
        proto = MediaHttpProtocol(front)
        t.connect(proto)
        key = base64.b64encode(b"0123456789abcdef").decode()
        proto.data_received(f"GET /ws/live/x.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                            f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
        await until(lambda: front.counters.flv_active == 1)
        lines, rest = split_head(t.take())
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        assert f"Sec-WebSocket-Accept: {accept_key(key)}" in lines
        messages = ws_messages(rest)
        assert messages[0].startswith(b"FLV\x01")
        assert t.limits is not None, "reading follows writing (ClientFlow)"
        proto.data_received(client_frame(PING, b"hi"))
        assert ws_frames(t.take()) == [(PONG, b"hi")]
        proto.data_received(client_frame(CLOSE, CLOSE_NORMAL.to_bytes(2, "big")))
        assert ws_frames(t.take()) == [(CLOSE, CLOSE_NORMAL.to_bytes(2, "big"))]
        assert t.closing and front.counters.flv_active == 0
        await until(lambda: t.lost)
        assert front.views.by_path == {}

    run(main())


def test_a_stream_that_is_not_live_is_404_and_closed(stream: Stream) -> None:
    async def main() -> None:
        front = make_front(OneShard(stream))
        t = FakeTransport()
        proto = MediaHttpProtocol(front)
        t.connect(proto)
        proto.data_received(b"GET /streams/live/other.flv HTTP/1.1\r\nHost: h\r\n\r\n")
        await until(lambda: t.closing)
        lines, _ = split_head(t.take())
        assert lines[0].startswith("HTTP/1.1 404")
        assert front.counters.flv_total == 0 and front.views.by_path == {}

    run(main())


def test_a_garbled_request_head_is_400_and_closed(stream: Stream) -> None:
    async def main() -> None:
        shard = OneShard(stream)
        front = make_front(shard)
        t = FakeTransport()
        proto = MediaHttpProtocol(front)
        t.connect(proto)
        proto.data_received(b"GET /streams/live/x.flv HTTP/1.1 trailing\r\n\r\n")
        lines, _ = split_head(t.take())
        assert lines[0].startswith("HTTP/1.1 400") and t.closing
        assert shard.asked == [], "the shard was never asked"

    run(main())
