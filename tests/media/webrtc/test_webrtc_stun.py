"""STUN codec: the RFC 5769 sample request, our responses checked by aioice
(an independent implementation), and the parse-or-ProtocolError invariant."""

from __future__ import annotations

from pathlib import Path

import pytest
from aioice import stun as aioice_stun
from hypothesis import given, settings, strategies as st

from hub.errors import ProtocolError
from hub.media.webrtc.stun import (ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_MESSAGE_INTEGRITY,
                                   ATTR_PRIORITY, ATTR_SOFTWARE, ATTR_USE_CANDIDATE, ATTR_USERNAME,
                                   ATTR_XOR_MAPPED_ADDRESS, BINDING_REQUEST, BINDING_SUCCESS,
                                   StunMessage, binding_success, is_stun, parse_xor_address,
                                   xor_address)

DATA = Path(__file__).resolve().parents[2] / "data"
# RFC 5769 2.1: sample request, short-term credentials.
RFC5769_REQUEST = (DATA / "stun_rfc5769_request.bin").read_bytes()
RFC5769_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")


def test_rfc5769_sample_request_every_field() -> None:
    msg = StunMessage.parse(RFC5769_REQUEST)
    assert msg.msg_type == BINDING_REQUEST and msg.transaction_id == TXID
    assert msg.attributes == [
        (ATTR_SOFTWARE, b"STUN test client"),
        (ATTR_PRIORITY, bytes.fromhex("6e0001ff")),
        (ATTR_ICE_CONTROLLED, bytes.fromhex("932ff9b151263b36")),
        (ATTR_USERNAME, b"evtj:h6vY"),
        (ATTR_MESSAGE_INTEGRITY, bytes.fromhex("9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2")),
        (ATTR_FINGERPRINT, bytes.fromhex("e57a3bcf")),
    ]
    assert msg.username == "evtj:h6vY"
    assert msg.integrity_at == 0x58 + 20 - 32 and msg.fingerprint_at == 0x58 + 20 - 8
    assert msg.check_integrity(RFC5769_PASSWORD)
    assert not msg.check_integrity(b"wrong password")
    assert msg.check_fingerprint()
    assert not msg.has(ATTR_USE_CANDIDATE)
    # The sample pads USERNAME with spaces; we write zeros, so only those 3 bytes differ.
    pad_at = 20 + 20 + 8 + 12 + 4 + 9
    assert RFC5769_REQUEST[pad_at:pad_at + 3] == b"   "
    expected = RFC5769_REQUEST[:pad_at] + bytes(3) + RFC5769_REQUEST[pad_at + 3:]
    assert bytes(msg) == expected
    assert bytes(StunMessage.parse(expected)) == expected


def test_tampered_request_fails_integrity_and_fingerprint() -> None:
    data = bytearray(RFC5769_REQUEST)
    data[0x2C] ^= 1  # inside PRIORITY
    msg = StunMessage.parse(bytes(data))
    assert not msg.check_integrity(RFC5769_PASSWORD)
    assert not msg.check_fingerprint()


def test_trailing_bytes_and_every_truncation_raise() -> None:
    with pytest.raises(ProtocolError):
        StunMessage.parse(RFC5769_REQUEST + b"\x00\x00\x00\x00")
    for n in range(len(RFC5769_REQUEST)):
        with pytest.raises(ProtocolError):
            StunMessage.parse(RFC5769_REQUEST[:n])


def test_xor_address_rfc5769_values() -> None:
    # RFC 5769 2.2 / 2.3: 192.0.2.1 and 2001:db8:1234:5678:11:2233:4455:6677, port 32853.
    assert xor_address("192.0.2.1", 32853, TXID) == bytes.fromhex("0001a147e112a643")
    v6 = bytes.fromhex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")
    assert xor_address("2001:db8:1234:5678:11:2233:4455:6677", 32853, TXID) == v6
    assert parse_xor_address(v6, TXID) == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    assert parse_xor_address(bytes.fromhex("0001a147e112a643"), TXID) == ("192.0.2.1", 32853)
    for bad in (b"", bytes.fromhex("0001a147e112a6"), bytes.fromhex("0003a147e112a643")):
        with pytest.raises(ProtocolError):
            parse_xor_address(bad, TXID)


def test_binding_success_checked_by_aioice() -> None:
    request = StunMessage.parse(RFC5769_REQUEST)
    reply = binding_success(request, "127.0.0.1", 40000, RFC5769_PASSWORD)
    theirs = aioice_stun.parse_message(reply)  # checks FINGERPRINT when present
    assert theirs.check_message_integrity(RFC5769_PASSWORD)
    assert not theirs.check_message_integrity(b"another password")
    assert theirs.message_method == aioice_stun.Method.BINDING
    assert theirs.message_class == aioice_stun.Class.RESPONSE
    assert theirs.transaction_id == TXID
    assert theirs.attributes["XOR-MAPPED-ADDRESS"][1] == 40000
    assert str(theirs.attributes["XOR-MAPPED-ADDRESS"][0]) == "127.0.0.1"
    ours = StunMessage.parse(reply)
    assert ours.msg_type == BINDING_SUCCESS and ours.check_integrity(RFC5769_PASSWORD)
    assert ours.check_fingerprint()
    assert [t for t, _ in ours.attributes] == [ATTR_XOR_MAPPED_ADDRESS, ATTR_MESSAGE_INTEGRITY,
                                               ATTR_FINGERPRINT]
    assert bytes(ours) == reply


def test_aioice_request_parsed_and_checked() -> None:
    req = aioice_stun.Message(message_method=aioice_stun.Method.BINDING,
                              message_class=aioice_stun.Class.REQUEST, transaction_id=b"abcdefghijkl")
    req.attributes["USERNAME"] = "srvr:clnt"
    req.attributes["PRIORITY"] = 1853759231
    req.attributes["ICE-CONTROLLING"] = 0x527AD2E0D9120891
    req.attributes["USE-CANDIDATE"] = None
    req.add_message_integrity(b"p" * 22)  # and FINGERPRINT
    data = bytes(req)
    msg = StunMessage.parse(data)
    assert msg.username == "srvr:clnt" and msg.has(ATTR_USE_CANDIDATE)
    assert msg.check_integrity(b"p" * 22) and msg.check_fingerprint()
    assert bytes(msg) == data
    assert is_stun(data) and not is_stun(b"\x16" + data[1:])


@pytest.mark.parametrize("bad", [
    b"", b"\x00\x01\x00\x00\x21\x12\xa4",
    bytes.fromhex("c0010000 2112a442") + bytes(12),           # top bits set
    bytes.fromhex("00010000 2112a443") + bytes(12),           # no cookie
    bytes.fromhex("00010002 2112a442") + bytes(12) + b"ab",   # length not a multiple of 4
    bytes.fromhex("00010004 2112a442") + bytes(12) + bytes.fromhex("00060008"),  # attr past end
    bytes.fromhex("00010008 2112a442") + bytes(12) + bytes.fromhex("80280002 00000000"),  # FINGERPRINT of 2
    bytes.fromhex("00010008 2112a442") + bytes(12) + bytes.fromhex("00080004 00000000"),  # short MI
])
def test_malformed_messages_raise(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        StunMessage.parse(bad)


def test_attribute_after_fingerprint_or_integrity_raises() -> None:
    fp = bytes.fromhex("80280004 00000000")
    user = bytes.fromhex("00060004 61626364")
    for body in (fp + user, bytes.fromhex("00080014") + bytes(20) + user):
        data = bytes.fromhex("0001") + len(body).to_bytes(2, "big") + bytes.fromhex("2112a442") + bytes(12) + body
        with pytest.raises(ProtocolError):
            StunMessage.parse(data)


def test_username_not_utf8_raises() -> None:
    body = bytes.fromhex("00060004 ff fe fd fc")
    data = bytes.fromhex("00010008 2112a442") + bytes(12) + body
    with pytest.raises(ProtocolError):
        _ = StunMessage.parse(data).username


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_protocol_error(data: bytes) -> None:
    try:
        msg = StunMessage.parse(data)
    except ProtocolError:
        return
    assert bytes(msg)[:4] == data[:4]
    msg.check_integrity(b"k")
    msg.check_fingerprint()


@settings(deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_any_body_behind_a_valid_header_parses_or_raises(body: bytes) -> None:
    data = bytes.fromhex("0001") + len(body).to_bytes(2, "big") + bytes.fromhex("2112a442") + bytes(12) + body
    try:
        msg = StunMessage.parse(data)
        _ = msg.username
    except ProtocolError:
        return
    assert msg.check_fingerprint() in (True, False)
