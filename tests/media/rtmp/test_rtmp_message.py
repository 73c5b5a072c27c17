"""Protocol control and user control messages: every field, byte-exact."""

from __future__ import annotations

import pytest

from hub.media.rtmp.constants import RtmpProtocolError
from hub.media.rtmp.message import (
    Abort, Acknowledgement, SetChunkSize, SetPeerBandwidth, UserControl, WindowAckSize,
    parse_control,
)


@pytest.mark.parametrize("type_id, wire, parsed", [
    (1, bytes.fromhex("00001000"), SetChunkSize(4096)),
    (1, bytes.fromhex("00000080"), SetChunkSize(128)),
    (2, bytes.fromhex("00000006"), Abort(6)),
    (3, bytes.fromhex("0026a0c8"), Acknowledgement(2531528)),
    (5, bytes.fromhex("002625a0"), WindowAckSize(2500000)),
    (6, bytes.fromhex("002625a0 02"), SetPeerBandwidth(2500000, 2)),
    (6, bytes.fromhex("00001000 00"), SetPeerBandwidth(4096, 0)),
    (4, bytes.fromhex("0000 00000001"), UserControl(0, b"\x00\x00\x00\x01")),
    (4, bytes.fromhex("0003 00000001 00000bb8"), UserControl(3, bytes.fromhex("00000001 00000bb8"))),
    (4, bytes.fromhex("0006 0001e240"), UserControl(6, bytes.fromhex("0001e240"))),
    (4, bytes.fromhex("001a"), UserControl(26, b"")),  # SWF verification request: kept as is
])
def test_control_roundtrip(type_id: int, wire: bytes, parsed: object) -> None:
    msg = parse_control(type_id, wire)
    assert msg == parsed and msg.type_id == type_id
    assert bytes(msg) == wire


def test_user_control_values() -> None:
    assert UserControl.parse(bytes.fromhex("0006 0001e240")).value == 123456
    assert bytes(UserControl.of(7, 123456)) == bytes.fromhex("0007 0001e240")
    assert bytes(UserControl.of(3, 1, 3000)) == bytes.fromhex("0003 00000001 00000bb8")
    assert UserControl(26, b"").value == 0
    assert bytes(Acknowledgement(2 ** 32 + 5)) == bytes.fromhex("00000005")


@pytest.mark.parametrize("type_id, wire", [
    (1, b""), (1, bytes(5)), (1, bytes(4)), (1, bytes.fromhex("80000000")),
    (2, bytes.fromhex("00000000")), (2, bytes.fromhex("00010040")),
    (3, bytes(3)), (5, bytes(4)), (6, bytes(4)), (6, bytes.fromhex("0000100003")),
    (4, b"\x00"), (4, bytes.fromhex("0006 0001")), (4, bytes.fromhex("0003 00000001")),
    (4, bytes(65)), (8, bytes(4)),
])
def test_control_malformed(type_id: int, wire: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        parse_control(type_id, wire)
