"""RTSP message formatting and the header multi-dict, byte-exact."""

from __future__ import annotations

import pytest

from hub.errors import ProtocolError
from hub.media.rtsp import Headers, InterleavedFrame, RtspRequest, RtspResponse, frame_header


def test_headers_case_insensitive_ordered_multi() -> None:
    h = Headers([("CSeq", "2"), ("WWW-Authenticate", "Digest a"), ("www-authenticate", "Basic b")])
    assert h.get("cseq") == "2" and h["CSEQ"] == "2"
    assert "Www-Authenticate" in h and "Session" not in h
    assert h.get_all("WWW-AUTHENTICATE") == ["Digest a", "Basic b"]
    assert h.get("Session") is None and h.get("Session", "x") == "x"
    with pytest.raises(KeyError):
        h["Session"]
    h.set("www-authenticate", "Digest c")  # replaces the first in place, drops the rest
    assert h.items() == [("CSeq", "2"), ("WWW-Authenticate", "Digest c")]
    h["Session"] = "abc"
    h.add("X-A", "1")
    h.add("x-a", "2")
    assert h.items()[-3:] == [("Session", "abc"), ("X-A", "1"), ("x-a", "2")]
    h.remove("X-A")
    assert len(h) == 3 and list(h) == [("CSeq", "2"), ("WWW-Authenticate", "Digest c"), ("Session", "abc")]
    assert h == Headers(h.items()) and h != Headers()


def test_request_bytes_with_body_sets_content_length() -> None:
    req = RtspRequest("ANNOUNCE", "rtsp://h/live/a",
                      headers=Headers([("CSeq", "2"), ("Content-Type", "application/sdp")]),
                      body=b"v=0\r\n")
    assert bytes(req) == (b"ANNOUNCE rtsp://h/live/a RTSP/1.0\r\n"
                          b"CSeq: 2\r\n"
                          b"Content-Type: application/sdp\r\n"
                          b"Content-Length: 5\r\n"
                          b"\r\n"
                          b"v=0\r\n")
    assert "Content-Length" not in req.headers  # formatting does not mutate


def test_stale_content_length_is_corrected_in_place() -> None:
    resp = RtspResponse(200, headers=Headers([("content-length", "99"), ("CSeq", "3")]), body=b"ab")
    assert bytes(resp) == b"RTSP/1.0 200 OK\r\ncontent-length: 2\r\nCSeq: 3\r\n\r\nab"


def test_response_default_reason_and_no_body() -> None:
    assert bytes(RtspResponse(455, headers=Headers([("CSeq", "7")]))) == \
        b"RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 7\r\n\r\n"
    assert bytes(RtspResponse(299)) == b"RTSP/1.0 299 Unknown\r\n\r\n"
    assert RtspResponse(200, "Fine").reason == "Fine"


def test_parse_round_trip_and_cseq() -> None:
    wire = (b"SETUP rtsp://127.0.0.1:18554/live/test/streamid=1 RTSP/1.0\r\n"
            b"Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record\r\n"
            b"CSeq: 4\r\n"
            b"User-Agent: Lavf59.27.100\r\n"
            b"Session: 12345678\r\n"
            b"\r\n")
    req = RtspRequest.parse(wire)
    assert req.cseq == 4 and req.headers["session"] == "12345678"
    assert bytes(req) == wire
    assert RtspRequest("OPTIONS", "*").cseq is None
    with pytest.raises(ProtocolError):
        RtspRequest.parse(b"OPTIONS * RTSP/1.0\r\nCSeq: x1\r\n\r\n").cseq


def test_non_utf8_header_bytes_round_trip() -> None:
    wire = b"RTSP/1.0 200 OK\r\nServer: Cam\xe9ra\r\n\r\n"
    assert bytes(RtspResponse.parse(wire)) == wire


def test_interleaved_frame_bytes() -> None:
    assert bytes(InterleavedFrame(1, b"\x80\xc8")) == b"$\x01\x00\x02\x80\xc8"
    assert bytes(InterleavedFrame(255, memoryview(b"x" * 258))) == b"$\xff\x01\x02" + b"x" * 258
    assert frame_header(2, 65535) == b"$\x02\xff\xff"
    with pytest.raises(ValueError):
        frame_header(256, 1)
    with pytest.raises(ValueError):
        frame_header(0, 65536)


def test_salvage_cseq_from_what_does_not_parse() -> None:
    from hub.media.rtsp.message import salvage_cseq

    assert salvage_cseq(b"NOT RTSP AT ALL\r\ncseq :  12\r\n\r\n") == 12
    assert salvage_cseq(b"X\nCSeq: 4294967295\n") == 4294967295
    assert salvage_cseq(b"X\r\nCSeq: 4294967296\r\n") is None  # over the wire's range
    assert salvage_cseq(b"X\r\nCSeq: 1x\r\n") is None
    assert salvage_cseq(b"X\r\nX-CSeq: 3\r\n") is None
    assert salvage_cseq(b"") is None
