"""Byte-exact framing tests; expected bytes are hand-assembled from the msgpack spec."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import BadRequest, HubError, IpcError, NotFound, ProtocolError, SessionNotFound
from hub.ipc import envelope as M
from hub.ipc.codec import MAX_FRAME, FrameDecoder, encode_frame
from hub.ipc.remote import error_body, remote_error

# {"t":"note","m":"ping","a":{}}: fixmap(3) fixstr "t" fixstr(4) "note" ...
NOTE_MSG = {"t": "note", "m": "ping", "a": {}}
NOTE_BYTES = bytes.fromhex(
    "00000012"            # length 18
    "83"                  # fixmap, 3 pairs
    "a174" "a46e6f7465"   # "t": "note"
    "a16d" "a470696e67"   # "m": "ping"
    "a161" "80"           # "a": {}
)

# {"t":"req","id":300,"m":"add","a":{"x":1}}: 300 needs uint16 (0xcd).
REQ_MSG = {"t": "req", "id": 300, "m": "add", "a": {"x": 1}}
REQ_BYTES = bytes.fromhex(
    "00000019"            # length 25
    "84"
    "a174" "a3726571"     # "t": "req"
    "a26964" "cd012c"     # "id": 300
    "a16d" "a3616464"     # "m": "add"
    "a161" "81a17801"     # "a": {"x": 1}
)

# bytes travel as bin 8 (0xc4), not str: use_bin_type=True.
FD_MSG = {"t": "fd", "m": "h", "a": {"already_read": b"OPT"}}
FD_BYTES = bytes.fromhex(
    "0000001f"            # length 31
    "83"
    "a174" "a26664"       # "t": "fd"
    "a16d" "a168"         # "m": "h"
    "a161" "81"           # "a": {
    "ac" + b"already_read".hex() +
    "c4034f5054"          #   "already_read": bin8 b"OPT" }
)

CASES = [(NOTE_MSG, NOTE_BYTES), (REQ_MSG, REQ_BYTES), (FD_MSG, FD_BYTES)]


@pytest.mark.parametrize("msg,wire", CASES)
def test_encode_exact_bytes(msg: dict[str, Any], wire: bytes) -> None:
    assert encode_frame(msg) == wire


@pytest.mark.parametrize("msg,wire", CASES)
def test_decode_whole(msg: dict[str, Any], wire: bytes) -> None:
    d = FrameDecoder()
    out = d.feed(wire)
    assert out == [msg]
    assert d.buffered == 0


def test_decoded_bytes_stay_bytes_and_str_stays_str() -> None:
    [m] = FrameDecoder().feed(FD_BYTES)
    assert type(m["a"]["already_read"]) is bytes
    assert type(m["m"]) is str


@pytest.mark.parametrize("msg,wire", CASES)
def test_decode_byte_by_byte(msg: dict[str, Any], wire: bytes) -> None:
    d = FrameDecoder()
    got: list[dict[str, Any]] = []
    for i in range(len(wire)):
        out = d.feed(wire[i:i + 1])
        if i < len(wire) - 1:
            assert out == []
        got += out
    assert got == [msg]
    assert d.buffered == 0


def test_decode_with_trailing_bytes() -> None:
    d = FrameDecoder()
    stream = NOTE_BYTES + REQ_BYTES + FD_BYTES[:7]
    assert d.feed(stream) == [NOTE_MSG, REQ_MSG]
    assert d.buffered == 7
    assert d.feed(memoryview(FD_BYTES)[7:]) == [FD_MSG]
    assert d.buffered == 0


def test_decode_split_at_every_point() -> None:
    stream = NOTE_BYTES + REQ_BYTES + FD_BYTES
    for cut in range(len(stream) + 1):
        d = FrameDecoder()
        assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == [NOTE_MSG, REQ_MSG, FD_MSG]


def test_oversized_length_raises_before_the_body_arrives() -> None:
    d = FrameDecoder()
    with pytest.raises(ProtocolError, match="exceeds"):
        d.feed((MAX_FRAME + 1).to_bytes(4, "big"))


def test_custom_cap() -> None:
    d = FrameDecoder(max_frame=17)
    with pytest.raises(ProtocolError):
        d.feed(NOTE_BYTES[:4])  # announces 18 > 17


def test_max_frame_length_itself_is_accepted() -> None:
    d = FrameDecoder(max_frame=18)
    assert d.feed(NOTE_BYTES) == [NOTE_MSG]


def test_encode_refuses_oversized_and_unpackable() -> None:
    with pytest.raises(ProtocolError):
        encode_frame({"t": "note", "m": "x", "a": {"b": b"\0" * (MAX_FRAME + 1)}})
    with pytest.raises(ProtocolError):
        encode_frame({"t": "note", "m": "x", "a": {"o": object()}})


@pytest.mark.parametrize("body", [
    b"\xc1",              # never-used type byte
    b"\x01",              # positive fixint, not a map
    b"\x91\x01",          # array [1]
    b"\x81\xa1\x78\x01",  # {"x": 1}: no "t"
    b"\x81\xa1\x74\x01",  # {"t": 1}: "t" not a str
    b"\x81\xa1\x74\xc4\x01\x61",  # {"t": b"a"}: bin, not str
    b"\x80\x00",          # {} followed by an extra byte inside the frame
    b"\x83\xa1",          # truncated map
    b"",                  # empty body
])
def test_garbage_raises_and_poisons(body: bytes) -> None:
    d = FrameDecoder()
    with pytest.raises(ProtocolError):
        d.feed(len(body).to_bytes(4, "big") + body)
    # Framing is lost for good: later bytes, even a valid frame, raise too.
    with pytest.raises(ProtocolError):
        d.feed(NOTE_BYTES)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=16))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes, chunk: int) -> None:
    d = FrameDecoder(max_frame=1024)
    try:
        for i in range(0, len(data), chunk):
            for m in d.feed(data[i:i + chunk]):
                assert isinstance(m, dict) and isinstance(m["t"], str)
    except ProtocolError:
        pass


# Leaves msgpack round-trips exactly (no floats NaN, no tuples).
_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20)
_value = st.recursive(_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                      max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=10), st.dictionaries(st.text(max_size=8), _value, max_size=5), st.integers(1, 7))
def test_roundtrip(method: str, args: dict[str, Any], chunk: int) -> None:
    msgs = [dict(M.notice(method, args)), dict(M.request(7, method, args))]
    wire = b"".join(encode_frame(m) for m in msgs)
    d = FrameDecoder()
    got: list[dict[str, Any]] = []
    for i in range(0, len(wire), chunk):
        got += d.feed(wire[i:i + chunk])
    assert got == msgs


# -- envelope checks ---------------------------------------------------------
@pytest.mark.parametrize("msg", [
    {"t": "req", "id": 1, "m": "ping", "a": {}},
    {"t": "res", "id": 1, "r": None},
    {"t": "err", "id": 1, "e": {"type": "NotFound", "msg": "x", "status": 404}},
    {"t": "note", "m": "wake", "a": {"1": 5}},
    {"t": "fd", "m": "handoff_rtsp", "a": {}},
])
def test_check_accepts_envelopes(msg: dict[str, Any]) -> None:
    assert M.check(msg) is msg


@pytest.mark.parametrize("msg", [
    {"t": "nope"},
    {"t": "req", "id": "1", "m": "ping", "a": {}},
    {"t": "req", "id": True, "m": "ping", "a": {}},
    {"t": "req", "id": 1, "m": "ping", "a": []},
    {"t": "res", "id": 1},
    {"t": "err", "id": 1, "e": {"type": "NotFound", "msg": "x"}},
    {"t": "note", "m": 3, "a": {}},
    {"t": "fd", "m": "x"},
])
def test_check_rejects_malformed(msg: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        M.check(msg)


# -- remote error mapping ----------------------------------------------------
def test_error_body_of_hub_error_and_of_a_bug() -> None:
    assert error_body(NotFound("no /live")) == {"type": "NotFound", "msg": "no /live", "status": 404}
    assert error_body(ValueError("bad")) == {"type": "ValueError", "msg": "bad", "status": 500}


def test_remote_error_by_name_then_status() -> None:
    e = remote_error({"type": "SessionNotFound", "msg": "s", "status": 404})
    assert type(e) is SessionNotFound and e.message == "s"
    e = remote_error({"type": "BadRequest", "msg": "b", "status": 400})
    assert type(e) is BadRequest
    e = remote_error({"type": "SomethingElse", "msg": "x", "status": 404})
    assert type(e) is NotFound
    e = remote_error({"type": "HubError", "msg": "h", "status": 500})
    assert type(e) is HubError and e.http_status == 500
    e = remote_error({"type": "KeyError", "msg": "k", "status": 500})
    assert type(e) is IpcError and e.http_status == 500 and "KeyError: k" in e.message
    e = remote_error({"type": "Odd", "msg": "o", "status": 418})
    assert type(e) is IpcError and e.http_status == 418
