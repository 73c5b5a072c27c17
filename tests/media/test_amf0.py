from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media import amf0
from hub.media.amf0 import EcmaArray

ONE = bytes.fromhex("3FF0000000000000")


@pytest.mark.parametrize("value, wire", [
    (1.0, b"\x00" + ONE),
    (1, b"\x00" + ONE),
    (-2.5, bytes.fromhex("00C004000000000000")),
    (True, b"\x01\x01"),
    (False, b"\x01\x00"),
    ("abc", b"\x02\x00\x03abc"),
    ("", b"\x02\x00\x00"),
    ("é", b"\x02\x00\x02\xc3\xa9"),
    (None, b"\x05"),
    ({"a": 1.0}, b"\x03\x00\x01a\x00" + ONE + b"\x00\x00\x09"),
    ({}, b"\x03\x00\x00\x09"),
    (EcmaArray(a=True), b"\x08\x00\x00\x00\x01\x00\x01a\x01\x01\x00\x00\x09"),
    ([1.0, "x"], b"\x0A\x00\x00\x00\x02\x00" + ONE + b"\x02\x00\x01x"),
    ([], b"\x0A\x00\x00\x00\x00"),
])
def test_encode_decode_exact(value: amf0.AmfValue, wire: bytes) -> None:
    assert amf0.encode(value) == wire
    decoded, end = amf0.decode_value(wire)
    assert end == len(wire)
    assert decoded == value
    assert type(decoded) is (float if type(value) is int else type(value))


def test_long_string() -> None:
    text = "a" * 65536
    wire = amf0.encode(text)
    assert wire[:5] == b"\x0C\x00\x01\x00\x00"
    assert wire[5:] == text.encode()
    assert amf0.decode(wire) == [text]
    # Exactly 65535 bytes still fits a short string.
    assert amf0.encode("b" * 65535)[:3] == b"\x02\xFF\xFF"


def test_on_metadata_script_body() -> None:
    wire = amf0.encode("onMetaData", EcmaArray(width=640.0))
    assert wire == (b"\x02\x00\x0AonMetaData" + b"\x08\x00\x00\x00\x01" + b"\x00\x05width"
                    + bytes.fromhex("004084000000000000") + b"\x00\x00\x09")
    assert amf0.decode(wire) == ["onMetaData", {"width": 640.0}]


def test_decode_date_undefined_and_offset() -> None:
    wire = b"\x06" + b"\x0B" + ONE + b"\x00\x00" + b"\x05"
    assert amf0.decode(wire) == [None, 1.0, None]
    value, end = amf0.decode_value(wire, 1)
    assert (value, end) == (1.0, 12)


def test_ecma_array_count_is_not_trusted() -> None:
    # FFmpeg writes approximate counts; the end marker decides.
    wire = b"\x08\x00\x00\x00\x07\x00\x01a\x05\x00\x00\x09"
    assert amf0.decode(wire) == [{"a": None}]


@pytest.mark.parametrize("wire", [
    b"\x00\x3F\xF0",  # truncated number
    b"\x02\x00\x05ab",  # truncated string
    b"\x03\x00\x01a",  # object without value
    b"\x03\x00\x01a\x05",  # object without end marker
    b"\x0D",  # unsupported marker
    b"\x02\x00\x01\xff",  # not UTF-8
    b"\x0A\xFF\xFF\xFF\xFF\x05",  # strict array count beyond the data
    b"\x0A\x00\x00\x00\x01" * 40 + b"\x05",  # nesting deeper than MAX_DEPTH
])
def test_decode_errors(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        amf0.decode(wire)


def test_decode_offset_out_of_range() -> None:
    with pytest.raises(ProtocolError):
        amf0.decode_value(b"\x05", 5)


def test_encode_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        amf0.encode(object())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        amf0.decode(data)
    except ProtocolError:
        pass


_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=4).filter(bool), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_roundtrip(value: amf0.AmfValue) -> None:
    assert amf0.decode(amf0.encode(value)) == [value]
