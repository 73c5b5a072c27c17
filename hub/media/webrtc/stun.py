"""STUN messages (RFC 5389) as far as an ICE-lite server needs them.

A WebRTC peer checks connectivity with STUN Binding requests carrying
USERNAME (``our_ufrag:their_ufrag``), MESSAGE-INTEGRITY (HMAC-SHA1 keyed with
our ICE password), PRIORITY, ICE-CONTROLLING and, on the nominated pair,
USE-CANDIDATE. We answer with a Binding success response carrying the
XOR-MAPPED-ADDRESS we saw, MESSAGE-INTEGRITY and FINGERPRINT.

:class:`StunMessage` keeps the attributes in wire order with their raw
values, so ``bytes(StunMessage.parse(x)) == x`` for any message whose
padding bytes are zero (RFC 5389 lets a sender pad with anything; we always
write zeros). Integrity and fingerprint are checked against the bytes as
received.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

from hub.errors import ProtocolError

__all__ = [
    "MAGIC_COOKIE", "BINDING_REQUEST", "BINDING_SUCCESS", "BINDING_ERROR", "BINDING_INDICATION",
    "ATTR_USERNAME", "ATTR_MESSAGE_INTEGRITY", "ATTR_ERROR_CODE", "ATTR_XOR_MAPPED_ADDRESS",
    "ATTR_PRIORITY", "ATTR_USE_CANDIDATE", "ATTR_SOFTWARE", "ATTR_FINGERPRINT",
    "ATTR_ICE_CONTROLLED", "ATTR_ICE_CONTROLLING", "MAX_STUN_SIZE",
    "StunMessage", "is_stun", "xor_address", "parse_xor_address", "binding_success",
]

MAGIC_COOKIE = 0x2112A442
HEADER_SIZE = 20
#: Largest message accepted: a Binding request is ~100 bytes; 1 KiB is generous.
MAX_STUN_SIZE = 1024
#: Most attributes kept from one message.
MAX_ATTRIBUTES = 32

BINDING_REQUEST = 0x0001
BINDING_INDICATION = 0x0011
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

ATTR_USERNAME = 0x0006
ATTR_MESSAGE_INTEGRITY = 0x0008
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_PRIORITY = 0x0024
ATTR_USE_CANDIDATE = 0x0025
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
ATTR_ICE_CONTROLLED = 0x8029
ATTR_ICE_CONTROLLING = 0x802A

_HEADER = struct.Struct(">HHI12s")
_TLV = struct.Struct(">HH")
_FINGERPRINT_XOR = 0x5354554E
_MI_SIZE = 4 + 20
_FP_SIZE = 4 + 4
_COOKIE_BYTES = struct.pack(">I", MAGIC_COOKIE)


def is_stun(data: bytes | bytearray | memoryview) -> bool:
    """RFC 7983 first-byte demux plus the magic cookie: a STUN message."""
    return len(data) >= HEADER_SIZE and data[0] < 4 and bytes(data[4:8]) == _COOKIE_BYTES


@dataclass(slots=True)
class StunMessage:
    """One STUN message: type, transaction id and attributes in wire order.

    ``integrity_at`` / ``fingerprint_at`` are the byte offsets of the
    MESSAGE-INTEGRITY / FINGERPRINT attributes in ``raw`` (set by parse).
    """

    msg_type: int
    transaction_id: bytes
    attributes: list[tuple[int, bytes]] = field(default_factory=list)
    raw: bytes = b""
    integrity_at: int = -1
    fingerprint_at: int = -1

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> StunMessage:
        """Parse a whole datagram as one STUN message; ProtocolError if it is not."""
        raw = bytes(data)
        size = len(raw)
        if size < HEADER_SIZE:
            raise ProtocolError(f"STUN: {size} bytes is shorter than the header")
        if size > MAX_STUN_SIZE:
            raise ProtocolError(f"STUN: message of {size} bytes is too large")
        msg_type, length, cookie, txid = _HEADER.unpack_from(raw, 0)
        if msg_type & 0xC000:
            raise ProtocolError("STUN: top bits of the type are set")
        if cookie != MAGIC_COOKIE:
            raise ProtocolError("STUN: no magic cookie")
        if length % 4 or HEADER_SIZE + length != size:
            raise ProtocolError(f"STUN: length {length} does not match a datagram of {size}")
        msg = cls(msg_type, txid, raw=raw)
        pos = HEADER_SIZE
        while pos < size:
            if size - pos < 4:
                raise ProtocolError("STUN: truncated attribute header")
            if len(msg.attributes) >= MAX_ATTRIBUTES:
                raise ProtocolError("STUN: too many attributes")
            a_type, a_len = _TLV.unpack_from(raw, pos)
            end = pos + 4 + a_len
            padded = end + (-a_len % 4)
            if padded > size:
                raise ProtocolError("STUN: attribute past end of message")
            if msg.fingerprint_at >= 0:
                raise ProtocolError("STUN: attribute after FINGERPRINT")
            if a_type == ATTR_MESSAGE_INTEGRITY:
                if a_len != 20 or msg.integrity_at >= 0:
                    raise ProtocolError("STUN: bad MESSAGE-INTEGRITY")
                msg.integrity_at = pos
            elif a_type == ATTR_FINGERPRINT:
                if a_len != 4:
                    raise ProtocolError("STUN: bad FINGERPRINT")
                msg.fingerprint_at = pos
            elif msg.integrity_at >= 0:
                raise ProtocolError("STUN: attribute after MESSAGE-INTEGRITY")
            msg.attributes.append((a_type, raw[pos + 4:end]))
            pos = padded
        return msg

    def attribute(self, a_type: int) -> bytes | None:
        """The value of the first attribute of that type, None if absent."""
        for t, v in self.attributes:
            if t == a_type:
                return v
        return None

    def has(self, a_type: int) -> bool:
        return any(t == a_type for t, _ in self.attributes)

    @property
    def username(self) -> str | None:
        value = self.attribute(ATTR_USERNAME)
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("STUN: USERNAME is not UTF-8") from exc

    def check_integrity(self, key: bytes) -> bool:
        """MESSAGE-INTEGRITY of the received bytes, keyed with ``key`` (short-term
        credential: the ICE password)."""
        at = self.integrity_at
        if at < 0:
            return False
        head = bytearray(self.raw[:at])
        struct.pack_into(">H", head, 2, at + _MI_SIZE - HEADER_SIZE)
        expected = hmac.new(key, head, hashlib.sha1).digest()
        return hmac.compare_digest(expected, self.raw[at + 4:at + _MI_SIZE])

    def check_fingerprint(self) -> bool:
        """True when FINGERPRINT is present and matches the received bytes."""
        at = self.fingerprint_at
        if at < 0:
            return False
        head = bytearray(self.raw[:at])
        struct.pack_into(">H", head, 2, at + _FP_SIZE - HEADER_SIZE)
        want = int(struct.unpack_from(">I", self.raw, at + 4)[0])
        return (zlib.crc32(head) ^ _FINGERPRINT_XOR) == want

    def __bytes__(self) -> bytes:
        """Serialise the attributes as they are (no integrity recomputed)."""
        parts: list[bytes] = [b""]
        length = 0
        for t, v in self.attributes:
            pad = -len(v) % 4
            parts.append(_TLV.pack(t, len(v)))
            parts.append(v)
            if pad:
                parts.append(bytes(pad))
            length += 4 + len(v) + pad
        parts[0] = _HEADER.pack(self.msg_type, length, MAGIC_COOKIE, self.transaction_id)
        return b"".join(parts)

    def encode(self, integrity_key: bytes | None = None, fingerprint: bool = True) -> bytes:
        """Serialise and append MESSAGE-INTEGRITY (when a key is given) and
        FINGERPRINT, computed over what precedes each (RFC 5389 15.4, 15.5)."""
        out = bytearray(bytes(self))
        if integrity_key is not None:
            struct.pack_into(">H", out, 2, len(out) - HEADER_SIZE + _MI_SIZE)
            digest = hmac.new(integrity_key, out, hashlib.sha1).digest()
            out += _TLV.pack(ATTR_MESSAGE_INTEGRITY, 20) + digest
        if fingerprint:
            struct.pack_into(">H", out, 2, len(out) - HEADER_SIZE + _FP_SIZE)
            crc = zlib.crc32(out) ^ _FINGERPRINT_XOR
            out += _TLV.pack(ATTR_FINGERPRINT, 4) + struct.pack(">I", crc)
        return bytes(out)


def xor_address(host: str, port: int, transaction_id: bytes) -> bytes:
    """The value of an XOR-MAPPED-ADDRESS attribute (RFC 5389 15.2)."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    xport = port ^ (MAGIC_COOKIE >> 16)
    if ip.version == 4:
        xaddr = int(ip) ^ MAGIC_COOKIE
        return struct.pack(">BBHI", 0, 1, xport, xaddr)
    mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
    return struct.pack(">BBH", 0, 2, xport) + (int(ip) ^ mask).to_bytes(16, "big")


def parse_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    """Inverse of :func:`xor_address`; ProtocolError on a malformed value."""
    if len(value) < 4:
        raise ProtocolError("STUN: short XOR-MAPPED-ADDRESS")
    _, family, xport = struct.unpack_from(">BBH", value, 0)
    port = xport ^ (MAGIC_COOKIE >> 16)
    if family == 1 and len(value) == 8:
        addr = struct.unpack_from(">I", value, 4)[0] ^ MAGIC_COOKIE
        return str(ipaddress.IPv4Address(addr)), port
    if family == 2 and len(value) == 20:
        mask = int.from_bytes(_COOKIE_BYTES + transaction_id, "big")
        addr6 = int.from_bytes(value[4:20], "big") ^ mask
        return str(ipaddress.IPv6Address(addr6)), port
    raise ProtocolError("STUN: bad XOR-MAPPED-ADDRESS family or length")


def binding_success(request: StunMessage, host: str, port: int, key: bytes) -> bytes:
    """The success response to a Binding request seen from ``host:port``."""
    reply = StunMessage(BINDING_SUCCESS, request.transaction_id,
                        [(ATTR_XOR_MAPPED_ADDRESS, xor_address(host, port, request.transaction_id))])
    return reply.encode(key)
