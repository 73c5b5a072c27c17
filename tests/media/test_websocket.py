from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.websocket import (BINARY, CLOSE_INVALID_DATA, CLOSE_NO_STATUS,
                                 CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG, PING, PONG, TEXT,
                                 WsClose, WsFrameDecoder, WsMessage, WsPing, WsPong,
                                 WsProtocolError, accept_key, encode_close, encode_frame,
                                 encode_header, mask)
from hub.media import websocket

# RFC 6455 section 5.7 examples.
HELLO_UNMASKED = bytes.fromhex("810548656c6c6f")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
PONG_MASKED = bytes.fromhex("8a8537fa213d7f9f4d5158")
HEL_MASKED = bytes.fromhex("018337fa213d7f9f4d")  # "Hel", FIN=0
LO_MASKED = bytes.fromhex("808237fa213d5b95")  # "lo", continuation, FIN=1
CLOSE_BYE = bytes.fromhex("888500000000" "03e8627965")  # 1000 "bye", zero mask key


def test_accept_key_rfc_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_encode_rfc_examples() -> None:
    assert encode_frame(b"Hello", TEXT) == HELLO_UNMASKED
    assert encode_frame(b"Hello", PING) == bytes.fromhex("890548656c6c6f")
    assert encode_frame(b"Hel", TEXT, fin=False) == bytes.fromhex("010348656c")
    assert encode_frame(b"lo", 0) == bytes.fromhex("80026c6f")
    assert encode_header(256) == bytes.fromhex("827e0100")
    assert encode_header(65535) == bytes.fromhex("827effff")
    assert encode_header(65536) == bytes.fromhex("827f0000000000010000")
    assert encode_header(125, BINARY) == bytes.fromhex("827d")
    assert encode_close(1000, "bye") == bytes.fromhex("880503e8627965")
    assert len(encode_close(1001, "x" * 300)) == 2 + 125


def test_mask_rfc_example() -> None:
    key = bytes.fromhex("37fa213d")
    assert mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")
    assert mask(bytes.fromhex("7f9f4d5158"), key) == b"Hello"
    assert mask(b"", key) == b""


STREAM = HELLO_MASKED + HEL_MASKED + PONG_MASKED + LO_MASKED + CLOSE_BYE
EXPECTED = [WsMessage(TEXT, b"Hello"), WsPong(b"Hello"), WsMessage(TEXT, b"Hello"),
            WsClose(1000, "bye")]


@pytest.mark.parametrize("how", ["whole", "bytewise"])
@pytest.mark.parametrize("trailing", [b"", HELLO_MASKED[:3]])
def test_decoder_feeds(how: str, trailing: bytes) -> None:
    dec = WsFrameDecoder()
    events = []
    data = STREAM + trailing
    chunks = [data] if how == "whole" else [data[i:i + 1] for i in range(len(data))]
    for chunk in chunks:
        dec.feed(chunk)
        while (ev := dec.next_event()) is not None:
            events.append(ev)
    assert events == EXPECTED
    assert dec.closed
    assert events[0].text == "Hello"  # type: ignore[union-attr]


def test_decoder_trailing_partial_frame_waits() -> None:
    dec = WsFrameDecoder()
    dec.feed(HELLO_MASKED + HELLO_MASKED[:6])
    assert dec.next_event() == WsMessage(TEXT, b"Hello")
    assert dec.next_event() is None
    dec.feed(HELLO_MASKED[6:])
    assert dec.next_event() == WsMessage(TEXT, b"Hello")


def masked(first: int, payload: bytes, key: bytes = b"\x01\x02\x03\x04") -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n <= 0xFFFF:
        head = bytes((first, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0xFF)) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


def test_decoder_lengths_ping_and_binary() -> None:
    dec = WsFrameDecoder()
    big = bytes(range(256)) * 300  # 76800 bytes: 64-bit length form
    dec.feed(masked(0x82, b"x" * 200) + masked(0x89, b"hi") + masked(0x82, big)
             + masked(0x88, b""))
    assert dec.next_event() == WsMessage(BINARY, b"x" * 200)
    assert dec.next_event() == WsPing(b"hi")
    assert dec.next_event() == WsMessage(BINARY, big)
    assert dec.next_event() == WsClose(CLOSE_NO_STATUS, "")
    dec.feed(HELLO_MASKED)  # nothing is decoded after Close
    assert dec.next_event() is None


@pytest.mark.parametrize("data, code", [
    (HELLO_UNMASKED, CLOSE_PROTOCOL_ERROR),  # client frame not masked
    (masked(0x83, b"x"), CLOSE_PROTOCOL_ERROR),  # reserved opcode
    (masked(0x8B, b""), CLOSE_PROTOCOL_ERROR),  # reserved control opcode
    (masked(0xC1, b"x"), CLOSE_PROTOCOL_ERROR),  # RSV1 without extension
    (masked(0x09, b""), CLOSE_PROTOCOL_ERROR),  # fragmented ping
    (masked(0x89, b"p" * 126), CLOSE_PROTOCOL_ERROR),  # control frame too long
    (masked(0x80, b"x"), CLOSE_PROTOCOL_ERROR),  # continuation with nothing to continue
    (HEL_MASKED + HELLO_MASKED, CLOSE_PROTOCOL_ERROR),  # new message mid-fragmentation
    (masked(0x81, b"\xff"), CLOSE_INVALID_DATA),  # text not UTF-8
    (masked(0x88, b"\x03"), CLOSE_PROTOCOL_ERROR),  # 1-byte close body
    (masked(0x88, b"\x03\xed"), CLOSE_PROTOCOL_ERROR),  # close code 1005 on the wire
    (masked(0x88, b"\x03\xe8\xff"), CLOSE_INVALID_DATA),  # close reason not UTF-8
    (b"\x82\xff\x80" + bytes(7), CLOSE_PROTOCOL_ERROR),  # 64-bit length, top bit set
    (masked(0x82, bytes(1025)), CLOSE_TOO_BIG),
    (masked(0x02, bytes(600)) + masked(0x80, bytes(600)), CLOSE_TOO_BIG),
])
def test_decoder_errors(data: bytes, code: int) -> None:
    dec = WsFrameDecoder(max_message=1024)
    dec.feed(data)
    with pytest.raises(WsProtocolError) as info:
        while dec.next_event() is not None:
            pass
    assert info.value.close_code == code
    assert isinstance(info.value, ProtocolError)


def test_too_big_detected_from_header_alone() -> None:
    dec = WsFrameDecoder(max_message=1024)
    dec.feed(b"\x82\xff" + (1 << 40).to_bytes(8, "big"))  # no payload sent yet
    with pytest.raises(WsProtocolError) as info:
        dec.next_event()
    assert info.value.close_code == CLOSE_TOO_BIG


def test_pong_and_ping_between_fragments() -> None:
    dec = WsFrameDecoder()
    dec.feed(HEL_MASKED + masked(0x89, b"") + LO_MASKED)
    assert dec.next_event() == WsPing(b"")
    assert dec.next_event() == WsMessage(TEXT, b"Hello")
    assert dec.next_event() is None
    assert PONG == 0xA


def test_a_fragmented_message_holds_its_payload_not_its_frames() -> None:
    """1-byte fragments cost ~40 bytes each when kept apart (a 1 MiB message
    held 42 MiB; empty ones cost 8 bytes each, past any cap). Now they are
    joined as they come, and a message may take MAX_FRAGMENTS frames."""
    dec = WsFrameDecoder()
    n = websocket.MAX_FRAGMENTS
    frames = masked(0x02, b"a") + masked(0x00, b"b") * (n - 1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        dec.feed(frames)
        assert dec.next_event() is None
        dec.feed(b"")  # the frames' bytes themselves are let go
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 4 * n, f"{n} bytes in {n} fragments hold {held} bytes"
    dec.feed(masked(0x80, b"c"))
    assert dec.next_event() == WsMessage(BINARY, b"a" + b"b" * (n - 1) + b"c")
    assert dec.next_event() is None
    dec.feed(masked(0x01, b"") + masked(0x80, b"ok"))  # the count starts again
    assert dec.next_event() == WsMessage(TEXT, b"ok")


def test_a_message_of_endless_empty_fragments_ends() -> None:
    dec = WsFrameDecoder()
    dec.feed(masked(0x02, b""))
    empty = masked(0x00, b"")
    with pytest.raises(WsProtocolError) as info:
        for _ in range(100_000):
            dec.feed(empty)
            assert dec.next_event() is None
    assert info.value.close_code == CLOSE_TOO_BIG


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    dec = WsFrameDecoder(max_message=32)
    dec.feed(data)
    try:
        while dec.next_event() is not None:
            pass
    except WsProtocolError as exc:
        assert exc.close_code in (CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA, CLOSE_TOO_BIG)


def test_close_code_for_each_kind_of_end() -> None:
    from hub.errors import Forbidden, NotFound, PayloadTooLarge, ProtocolError, ServiceUnavailable
    from hub.media.websocket import WsProtocolError, close_code_for

    assert close_code_for(None) == 1000
    assert close_code_for(WsProtocolError("bad utf-8", 1007)) == 1007
    assert close_code_for(PayloadTooLarge("big")) == 1009
    assert close_code_for(ProtocolError("garbled")) == 1002
    assert close_code_for(NotFound("no channel")) == 1008
    assert close_code_for(Forbidden("no right")) == 1008
    assert close_code_for(ServiceUnavailable("ipc down")) == 1011
    assert close_code_for(RuntimeError("bug")) == 1011
