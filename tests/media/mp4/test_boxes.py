"""Box headers out, the bounded box reader in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.mp4.boxes import box, child, children, full_box, iter_boxes, read_box_header


def test_box_and_full_box_bytes() -> None:
    assert box(b"free") == bytes.fromhex("00000008" "66726565")
    assert box(b"mdat", b"\x01\x02", memoryview(b"\x03")) == bytes.fromhex("0000000b" "6d646174" "010203")
    assert full_box(b"mfhd", 1, 0x020304, b"\x00\x00\x00\x09") == bytes.fromhex(
        "00000010" "6d666864" "01020304" "00000009")


def test_reader_round_trip_and_nesting() -> None:
    inner = full_box(b"mfhd", 0, 0, b"\x00\x00\x00\x01")
    data = box(b"moof", inner, box(b"traf")) + box(b"mdat", b"xyz")
    boxes = list(iter_boxes(data))
    assert [(b.kind, b.offset, b.size, len(b.header)) for b in boxes] == [
        (b"moof", 0, 32, 8), (b"mdat", 32, 11, 8)]
    assert b"".join(bytes(b) for b in boxes) == data
    assert bytes(boxes[1].payload) == b"xyz"
    kids = list(children(boxes[0]))
    assert [k.kind for k in kids] == [b"mfhd", b"traf"]
    assert kids[0].full_header() == (0, 0)
    assert bytes(child(boxes[0], b"traf")) == box(b"traf")
    with pytest.raises(ProtocolError):
        child(boxes[0], b"trun")


def test_large_size_and_to_the_end() -> None:
    large = bytes.fromhex("00000001" "6d646174" "0000000000000013") + b"abc"
    (b,) = iter_boxes(large)
    assert (b.kind, b.size, len(b.header), bytes(b.payload)) == (b"mdat", 19, 16, b"abc")
    assert bytes(b) == large
    assert read_box_header(large) == (b"mdat", 16, 19)
    open_ended = bytes.fromhex("00000000" "6d646174") + b"rest of file"
    (b,) = iter_boxes(open_ended, top_level=True)
    assert (b.size, bytes(b.payload), bytes(b)) == (len(open_ended), b"rest of file", open_ended)
    with pytest.raises(ProtocolError):  # only a file's last box may leave its size open
        list(iter_boxes(open_ended))


@pytest.mark.parametrize("data", [
    b"\x00\x00\x00",  # header cut short
    bytes.fromhex("00000007" "66726565"),  # size below the header
    bytes.fromhex("00000010" "66726565") + b"1234",  # runs past the end
    bytes.fromhex("00000001" "6d646174" "00000000"),  # 64-bit size cut short
    bytes.fromhex("00000001" "6d646174" "000000000000000f"),  # 64-bit size below its header
    box(b"free") + b"\x00",  # trailing byte: not a box
])
def test_reader_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(iter_boxes(data))


def test_reader_range_outside_buffer() -> None:
    with pytest.raises(ProtocolError):
        list(iter_boxes(b"", 1))


@settings(deadline=None)  # timing is not what these check; the machine is shared
@given(st.binary(max_size=200), st.booleans())
def test_any_bytes_parse_or_protocol_error(data: bytes, top_level: bool) -> None:
    try:
        boxes = list(iter_boxes(data, top_level=top_level))
    except ProtocolError:
        return
    assert b"".join(bytes(b) for b in boxes) == data
    for b in boxes:
        try:
            list(children(b))
            b.full_header()
        except ProtocolError:
            pass
