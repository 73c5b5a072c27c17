"""WSP messages byte-exact, incremental framing of interleaved blobs, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.wsp import (InterleavedFramer, WspError, WspRequest, WspResponse, salvage_seq,
                           split_interleaved, ws_frames_for_interleaved)

INIT = b"WSP/1.1 INIT\r\nproto: rtsp\r\nhost: 127.0.0.1\r\nport: 1554\r\nseq: 1\r\n\r\n"
WRAP = (b"WSP/1.1 WRAP\r\nseq: 2\r\n\r\n"
        b"OPTIONS rtsp://127.0.0.1:1554/live/x RTSP/1.0\r\nCSeq: 1\r\n\r\n")


def test_init_parsed_field_by_field_and_round_trips() -> None:
    r = WspRequest.parse(INIT)
    assert r.verb == "INIT"
    assert r.headers == [("proto", "rtsp"), ("host", "127.0.0.1"), ("port", "1554"), ("seq", "1")]
    assert r.header("PROTO") == "rtsp" and r.header("socket") is None
    assert r.seq == "1" and r.payload == b""
    assert bytes(r) == INIT


def test_wrap_keeps_the_rtsp_payload_exactly() -> None:
    r = WspRequest.parse(WRAP)
    assert r.verb == "WRAP" and r.seq == "2"
    assert r.payload == b"OPTIONS rtsp://127.0.0.1:1554/live/x RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    assert bytes(r) == WRAP


def test_header_spacing_is_tolerated_and_normalised() -> None:
    r = WspRequest.parse(b"WSP/1.1 JOIN\r\nchannel:7\r\n  seq :  3 \r\n\r\n")
    assert r.header("channel") == "7" and r.seq == "3"
    assert bytes(r) == b"WSP/1.1 JOIN\r\nchannel: 7\r\nseq: 3\r\n\r\n"


def test_replies_byte_exact() -> None:
    assert bytes(WspResponse.reply(200, "1", channel="1")) == b"WSP/1.1 200 OK\r\nseq: 1\r\nchannel: 1\r\n\r\n"
    assert bytes(WspResponse.reply(200, "2", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")) == \
        b"WSP/1.1 200 OK\r\nseq: 2\r\n\r\nRTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"
    assert bytes(WspResponse.reply(400, "9")) == b"WSP/1.1 400 Bad Request\r\nseq: 9\r\n\r\n"
    assert bytes(WspResponse.reply(404, None)) == b"WSP/1.1 404 Not Found\r\n\r\n"


def test_response_parse() -> None:
    raw = b"WSP/1.1 200 OK\r\nseq: 1\r\nchannel: 12\r\n\r\n"
    r = WspResponse.parse(raw)
    assert (r.status, r.reason, r.header("channel"), r.payload) == (200, "OK", "12", b"")
    assert bytes(r) == raw


@pytest.mark.parametrize("raw", [
    b"", b"garbage", b"WSP/1.1 INIT\r\nseq: 1\r\n",  # no end of head
    b"HTTP/1.1 INIT\r\n\r\n", b"WSP/1.1\r\n\r\n", b"WSP/1.1 init\r\n\r\n",
    b"WSP/1.1 INIT\r\nno colon\r\n\r\n", b"WSP/1.1 INIT\r\n: x\r\n\r\n",
    b"WSP/1.1 INIT\r\nse q: 1\r\n\r\n", b"WSP/1.1 INIT\xff\r\n\r\n",
    b"WSP/1.1 INIT\r\n" + b"a: b\r\n" * 33 + b"\r\n", b"WSP/1.1 WRAP\r\n\r\n" + b"x" * 65536,
])
def test_bad_requests_raise_wsp_error(raw: bytes) -> None:
    with pytest.raises(WspError):
        WspRequest.parse(raw)


def test_seq_is_digits_only_and_salvaged_from_broken_messages() -> None:
    assert WspRequest.parse(b"WSP/1.1 INIT\r\nseq: 1a\r\n\r\n").seq is None
    assert salvage_seq(b"WSP/1.1 INIT\r\nbroken line\r\nseq: 42\r\n") == "42"
    assert salvage_seq(b"nothing here") is None


PKT_A = b"$\x00\x00\x03abc"
PKT_B = b"$\x01\x00\x00"
PKT_C = b"$\x02\x01\x00" + bytes(256)


def test_split_interleaved_walks_the_headers() -> None:
    parts = split_interleaved(PKT_A + PKT_B + PKT_C)
    assert [bytes(p) for p in parts] == [PKT_A, PKT_B, PKT_C]
    assert split_interleaved(b"") == []


@pytest.mark.parametrize("blob", [b"x", b"$\x00\x00", b"$\x00\x00\x05abc", PKT_A + b"#"])
def test_split_interleaved_refuses_broken_blobs(blob: bytes) -> None:
    with pytest.raises(ProtocolError):
        split_interleaved(blob)


def test_one_ws_frame_per_packet_byte_exact() -> None:
    framed = ws_frames_for_interleaved(PKT_A + PKT_B + PKT_C)
    assert framed == (b"\x82\x07" + PKT_A + b"\x82\x04" + PKT_B
                      + b"\x82\x7e\x01\x04" + PKT_C)
    # A skipping player is handed a memoryview slice that starts at a key packet.
    assert ws_frames_for_interleaved(memoryview(PKT_A + PKT_B)[len(PKT_A):]) == b"\x82\x04" + PKT_B


def test_framer_caches_the_shared_blob_object() -> None:
    f = InterleavedFramer()
    blob = PKT_A + PKT_B
    first = f.frame(blob)
    assert f.frame(blob) is first
    other = bytes(bytearray(blob))  # equal bytes, another object: framed anew
    again = f.frame(other)
    assert again == first and again is not first


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_protocol_error(raw: bytes) -> None:
    for cls in (WspRequest, WspResponse):
        try:
            msg = cls.parse(raw)
        except ProtocolError:
            continue
        assert isinstance(bytes(msg), bytes)
    try:
        split_interleaved(raw)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"WSP/1\.1 [A-Z][A-Z_]{0,9}\r\n([a-z]{1,8}: [a-z0-9]{0,8}\r\n){0,5}\r\n", fullmatch=True),
       st.binary(max_size=64))
def test_wellformed_requests_round_trip(head: str, payload: bytes) -> None:
    raw = head.encode() + payload
    assert bytes(WspRequest.parse(raw)) == raw
