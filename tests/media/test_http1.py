from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from hub.errors import ProtocolError
from hub.media.http1 import MAX_HEAD, MAX_LINE, HeadTooLarge, parse_request_head, sniff

REQ = (b"GET /streams/live/test.flv?token=abc&x= HTTP/1.1\r\n"
       b"Host: 127.0.0.1:1554\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n")


@pytest.mark.parametrize("data, kind, target", [
    (b"OPTIONS rtsp://h/live/x RTSP/1.0\r\nCSeq: 1\r\n\r\n", "rtsp", b"rtsp://h/live/x"),
    (b"ANNOUNCE rtsp://h/a RTSP/1.0\r\n", "rtsp", b"rtsp://h/a"),
    (b"GET_PARAMETER * RTSP/1.0\n", "rtsp", b"*"),
    (b"GET /api/v1/server HTTP/1.1\r\n", "http", b"/api/v1/server"),
    (b"OPTIONS /api/v1/server HTTP/1.1\r\n", "http", b"/api/v1/server"),
    (b"GET /streams/a.flv HTTP/1.0\r\n", "http", b"/streams/a.flv"),
    (b"GET /x SIP/2.0\r\n", "garbage", b""),
    (b"HELLO /x HTTP/1.1\r\n", "garbage", b""),
    (b"\x16\x03\x01\x02\x00\x01\x00", "garbage", b""),
    (b"get / HTTP/1.1\r\n", "garbage", b""),
    (b"GET", "need_data", b""),
    (b"DESCRIBE rtsp://h/a RT", "need_data", b""),
])
def test_sniff(data: bytes, kind: str, target: bytes) -> None:
    assert sniff(data) == (kind, target)


def test_sniff_byte_by_byte_decides_only_at_line_end() -> None:
    line = b"DESCRIBE rtsp://127.0.0.1/live/a RTSP/1.0\r\n"
    for i in range(1, len(line)):
        assert sniff(line[:i])[0] == "need_data"
    assert sniff(line + b"CSeq: 2\r\n") == ("rtsp", b"rtsp://127.0.0.1/live/a")


def test_sniff_caps_the_first_line() -> None:
    with pytest.raises(HeadTooLarge):
        sniff(b"GET /" + b"a" * MAX_LINE)
    with pytest.raises(HeadTooLarge):
        sniff(b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n")


def test_parse_request_head_fields() -> None:
    head, used = parse_request_head(REQ + b"trailing")  # type: ignore[misc]
    assert used == len(REQ)
    assert (head.method, head.path, head.version) == ("GET", "/streams/live/test.flv", "HTTP/1.1")
    assert head.target == "/streams/live/test.flv?token=abc&x="
    assert head.query == {"token": "abc", "x": ""}
    assert head.header("HOST") == "127.0.0.1:1554"
    assert head.is_websocket


def test_parse_request_head_incremental() -> None:
    for i in range(len(REQ)):
        assert parse_request_head(REQ[:i]) is None
    assert parse_request_head(REQ) is not None


def test_parse_request_head_bare_lf() -> None:
    data = b"GET /a%20b HTTP/1.1\nHost: x\n\n"
    parsed = parse_request_head(data + b"$")
    assert parsed is not None and parsed[0].path == "/a b" and parsed[1] == len(data)


@pytest.mark.parametrize("bad", [
    b"GET /a\r\n\r\n",
    b"GET /a HTTP/2\r\n\r\n",
    b"GET /a HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET /a HTTP/1.1\r\n Folded: x\r\n\r\n",
    b"GET /\xff HTTP/1.1\r\n\r\n",
])
def test_parse_request_head_rejects(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request_head(bad)


def test_parse_request_head_caps() -> None:
    with pytest.raises(HeadTooLarge):
        parse_request_head(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 65 + b"\r\n")
    with pytest.raises(HeadTooLarge):
        parse_request_head(b"GET / HTTP/1.1\r\nX: " + b"y" * MAX_HEAD)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        sniff(data)
        parse_request_head(data)
    except ProtocolError:
        pass
