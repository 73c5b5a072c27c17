"""RTSP-over-HTTP tunnelling: request roles and the incremental base64 decoder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.http1 import parse_request_head
from hub.media.rtsp_tunnel import GET_RESPONSE, Base64Decoder, session_cookie, tunnel_role

OPTIONS = b"OPTIONS rtsp://127.0.0.1:1554/live/x RTSP/1.0\r\nCSeq: 1\r\n\r\n"
# base64 of the requests above, from the stdlib's base64 (a known-good encoder).
OPTIONS_B64 = (b"T1BUSU9OUyBydHNwOi8vMTI3LjAuMC4xOjE1NTQvbGl2ZS94IFJUU1AvMS4wDQpDU2VxOiAxDQoNCg==")
DESCRIBE = b"DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\n\r\n"
DESCRIBE_B64 = b"REVTQ1JJQkUgcnRzcDovL2gveCBSVFNQLzEuMA0KQ1NlcTogMg0KDQo="


def _head(raw: bytes):  # type: ignore[no-untyped-def]
    parsed = parse_request_head(raw)
    assert parsed is not None
    return parsed[0]


def test_get_response_is_exactly_the_quicktime_answer() -> None:
    assert GET_RESPONSE == (b"HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\n"
                            b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")


def test_roles_and_cookie() -> None:
    get = _head(b"GET /live/x HTTP/1.0\r\nx-sessioncookie: abc123\r\n"
                b"Accept: application/x-rtsp-tunnelled\r\n\r\n")
    post = _head(b"POST /live/x HTTP/1.0\r\nX-SessionCookie: abc123\r\n"
                 b"Content-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n")
    assert tunnel_role(get) == "get" and tunnel_role(post) == "post"
    assert session_cookie(get) == session_cookie(post) == "abc123"
    assert tunnel_role(_head(b"GET /live/x HTTP/1.1\r\nAccept: */*\r\n\r\n")) is None
    assert tunnel_role(_head(b"POST /api/v1/login HTTP/1.1\r\nContent-Type: application/json\r\n\r\n")) is None
    with pytest.raises(ProtocolError):
        session_cookie(_head(b"GET /x HTTP/1.0\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n"))
    with pytest.raises(ProtocolError):
        session_cookie(_head(b"GET /x HTTP/1.0\r\nx-sessioncookie: " + b"a" * 129 + b"\r\n\r\n"))


def _feed_all(chunks: list[bytes]) -> bytes:
    d = Base64Decoder()
    out = b"".join(d.feed(c) for c in chunks)
    assert d.pending == 0
    return out


STREAM = OPTIONS_B64 + b"\r\n" + DESCRIBE_B64


def test_whole_byte_by_byte_and_split_at_every_point() -> None:
    want = OPTIONS + DESCRIBE
    assert _feed_all([STREAM]) == want
    assert _feed_all([STREAM[i:i + 1] for i in range(len(STREAM))]) == want
    for cut in range(len(STREAM) + 1):
        assert _feed_all([STREAM[:cut], STREAM[cut:]]) == want


def test_trailing_partial_group_is_held() -> None:
    d = Base64Decoder()
    assert d.feed(DESCRIBE_B64 + b"T1B") == DESCRIBE
    assert d.pending == 3
    assert d.feed(b"U") == b"OPT"


def test_known_vectors() -> None:
    assert Base64Decoder().feed(b"YQ==YWI=YWJj") == b"aababc"
    assert Base64Decoder().feed(b"") == b""


@pytest.mark.parametrize("bad", [b"YQ=a", b"=AAA", b"Y===", b"ab!d", b"YQ==\x00AAA"])
def test_bad_base64_raises_protocol_error(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        Base64Decoder().feed(bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6), st.data())
def test_any_split_of_encoded_blocks_decodes(blocks: list[bytes], data: st.DataObject) -> None:
    import base64

    text = b"".join(base64.b64encode(b) for b in blocks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=5)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    assert _feed_all(pieces) == b"".join(blocks)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=4))
def test_any_input_decodes_or_raises_protocol_error(chunks: list[bytes]) -> None:
    d = Base64Decoder()
    try:
        for c in chunks:
            d.feed(c)
    except ProtocolError:
        pass
