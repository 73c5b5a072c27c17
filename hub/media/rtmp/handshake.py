"""The RTMP handshake: C0/C1/C2 against S0/S1/S2, simple and digest forms.

Every packet after the one-byte version is 1536 bytes. The *simple* form
(RTMP spec 5.2) is time, four zero bytes and random data; the answer's S2
echoes C1. Flash Player 9 and later — and so FFmpeg, librtmp/OBS and most
encoders — send the *digest* form instead: a non-zero version and an
HMAC-SHA256 digest hidden in C1 at a position computed from four of its
bytes. Some players (FFmpeg's included) check that the server answers with a
digest S1 and an S2 signed with a key derived from C1's digest, so we answer
a digest C1 that way, as nginx-rtmp and SRS do, and a simple C1 simply.

Digest layout. The 1528 bytes after time and version hold two 764-byte
blocks; the digest sits in one of them. *Scheme 0* (librtmp's offset
algorithm 0, FFmpeg's default; SRS calls it "schema1") puts it in the block
at byte 8: offset = (c[8] + c[9] + c[10] + c[11]) % 728 + 12. *Scheme 1*
(SRS's "schema0") uses the block at byte 772: offset = (sum of c[772..775])
% 728 + 776. The digest is HMAC-SHA256 over the packet without its 32 digest
bytes, keyed with the first 30 bytes of the player key ("Genuine Adobe Flash
Player 001") for C1 and the first 36 of the server key ("Genuine Adobe Flash
Media Server 001") for S1. The answer packet (S2 or C2) ends with
HMAC-SHA256(HMAC-SHA256(full key, peer's digest), first 1504 bytes).

Pure functions; randomness comes from the caller (``random_bytes``) so tests
are byte-exact.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Callable

from .constants import RtmpProtocolError

RTMP_VERSION = 3
PACKET_SIZE = 1536
DIGEST_LEN = 32
#: Bytes of an answer packet (S2/C2) before its 32-byte signature.
SIGNED_LEN = PACKET_SIZE - DIGEST_LEN

_KEY_TAIL = bytes((
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
))
PLAYER_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
PLAYER_KEY_PARTIAL = PLAYER_KEY[:30]
SERVER_KEY_PARTIAL = SERVER_KEY[:36]

#: Version we put in a digest S1: its first byte must be >= 3 for FFmpeg to
#: check (and accept) our digest, as it does with Flash Media Server's.
SERVER_VERSION = bytes((5, 0, 3, 1))
#: What FFmpeg sends as a player (Flash Player 9.0.124.2).
CLIENT_VERSION = bytes((9, 0, 124, 2))

SCHEMES = (0, 1)
_SCHEME_BASE = {0: 8, 1: 772}
_U32 = struct.Struct(">I")

RandomBytes = Callable[[int], bytes]


def digest_offset(packet: bytes, scheme: int) -> int:
    """Where the 32-byte digest sits in a 1536-byte C1/S1 under ``scheme``."""
    base = _SCHEME_BASE[scheme]
    return sum(packet[base:base + 4]) % 728 + base + 4


def packet_digest(packet: bytes, offset: int, key: bytes) -> bytes:
    """HMAC-SHA256 of ``packet`` without the 32 bytes at ``offset``."""
    mac = hmac.new(key, packet[:offset], hashlib.sha256)
    mac.update(packet[offset + DIGEST_LEN:])
    return mac.digest()


def find_digest(packet: bytes, key: bytes) -> tuple[int, bytes] | None:
    """Return (scheme, digest) if ``packet`` carries a valid digest under
    either scheme, else None."""
    for scheme in SCHEMES:
        offset = digest_offset(packet, scheme)
        expect = packet_digest(packet, offset, key)
        if hmac.compare_digest(expect, packet[offset:offset + DIGEST_LEN]):
            return scheme, expect
    return None


def imprint_digest(packet: bytearray, scheme: int, key: bytes) -> bytes:
    """Write the digest of ``packet`` into it under ``scheme``; return the digest."""
    offset = digest_offset(bytes(packet), scheme)
    digest = packet_digest(bytes(packet), offset, key)
    packet[offset:offset + DIGEST_LEN] = digest
    return digest


def signed_answer(peer_digest: bytes, full_key: bytes, random: bytes) -> bytes:
    """An S2/C2 answering a digest hello: 1504 random bytes and their signature."""
    if len(random) != SIGNED_LEN:
        raise ValueError("an answer packet needs 1504 random bytes")
    key = hmac.new(full_key, peer_digest, hashlib.sha256).digest()
    return random + hmac.new(key, random, hashlib.sha256).digest()


def answer_is_signed(answer: bytes, own_digest: bytes, full_key: bytes) -> bool:
    """Check an S2/C2 against the digest we put in our own hello."""
    if len(answer) != PACKET_SIZE:
        return False
    key = hmac.new(full_key, own_digest, hashlib.sha256).digest()
    expect = hmac.new(key, answer[:SIGNED_LEN], hashlib.sha256).digest()
    return hmac.compare_digest(expect, answer[SIGNED_LEN:])


@dataclass(frozen=True, slots=True)
class Hello:
    """A C1 or S1 taken apart. ``scheme``/``digest`` are None for the simple form."""

    time: int
    version: bytes
    scheme: int | None
    digest: bytes | None
    raw: bytes

    @classmethod
    def parse(cls, packet: bytes, key: bytes) -> Hello:
        """Parse a 1536-byte hello; look for a digest made with ``key`` unless the
        version field is zero (which marks the simple form)."""
        if len(packet) != PACKET_SIZE:
            raise RtmpProtocolError("RTMP handshake packet is not 1536 bytes")
        version = packet[4:8]
        found = None if version == b"\x00\x00\x00\x00" else find_digest(packet, key)
        scheme, digest = found if found is not None else (None, None)
        return cls(_U32.unpack_from(packet)[0], version, scheme, digest, packet)

    def __bytes__(self) -> bytes:
        return self.raw


def _hello(time: int, version: bytes, random: bytes) -> bytearray:
    if len(random) != PACKET_SIZE - 8:
        raise ValueError("a hello needs 1528 random bytes")
    return bytearray(_U32.pack(time & 0xFFFFFFFF) + version + random)


def server_answer(c0c1: bytes, random_bytes: RandomBytes, time: int = 0) -> tuple[bytes, Hello]:
    """Answer C0+C1 (1537 bytes) with S0+S1+S2; also return the parsed C1.

    A C1 with a valid digest gets a digest S1 (same scheme) and a signed S2;
    anything else the simple answer (S2 echoes C1). Only version 3 is spoken:
    6 is RTMPE (encrypted), which we do not offer.
    """
    if len(c0c1) != 1 + PACKET_SIZE:
        raise RtmpProtocolError("RTMP handshake: C0+C1 must be 1537 bytes")
    if c0c1[0] != RTMP_VERSION:
        raise RtmpProtocolError(f"RTMP handshake: unsupported version {c0c1[0]}")
    c1 = Hello.parse(bytes(c0c1[1:]), PLAYER_KEY_PARTIAL)
    if c1.scheme is None or c1.digest is None:
        s1 = _hello(time, b"\x00\x00\x00\x00", random_bytes(PACKET_SIZE - 8))
        return b"".join((bytes((RTMP_VERSION,)), s1, c1.raw)), c1
    s1 = _hello(time, SERVER_VERSION, random_bytes(PACKET_SIZE - 8))
    imprint_digest(s1, c1.scheme, SERVER_KEY_PARTIAL)
    s2 = signed_answer(c1.digest, SERVER_KEY, random_bytes(SIGNED_LEN))
    return b"".join((bytes((RTMP_VERSION,)), s1, s2)), c1


# --- the client's side (tests, and a future RTMP pull) ----------------------


def client_hello(random_bytes: RandomBytes, scheme: int | None = 0, time: int = 0,
                 version: bytes = CLIENT_VERSION) -> tuple[bytes, Hello]:
    """C0+C1: a digest C1 under ``scheme``, or the simple form for None."""
    if scheme is None:
        c1 = _hello(time, b"\x00\x00\x00\x00", random_bytes(PACKET_SIZE - 8))
        return bytes((RTMP_VERSION,)) + bytes(c1), Hello(time, b"\x00" * 4, None, None, bytes(c1))
    c1 = _hello(time, version, random_bytes(PACKET_SIZE - 8))
    digest = imprint_digest(c1, scheme, PLAYER_KEY_PARTIAL)
    return bytes((RTMP_VERSION,)) + bytes(c1), Hello(time, version, scheme, digest, bytes(c1))


def check_server_answer(s0s1s2: bytes, c1: Hello) -> Hello:
    """What a strict player checks (FFmpeg's, for a server version >= 3): S0 is 3;
    a digest C1 must get an S1 with a server digest (either scheme) and an S2
    signed from C1's digest; a simple C1 must be echoed in S2. Returns S1."""
    if len(s0s1s2) != 1 + 2 * PACKET_SIZE or s0s1s2[0] != RTMP_VERSION:
        raise RtmpProtocolError("RTMP handshake: bad S0+S1+S2")
    s1 = Hello.parse(bytes(s0s1s2[1:1 + PACKET_SIZE]), SERVER_KEY_PARTIAL)
    s2 = bytes(s0s1s2[1 + PACKET_SIZE:])
    if c1.digest is None:
        if s2 != c1.raw:
            raise RtmpProtocolError("RTMP handshake: S2 does not echo C1")
        return s1
    if s1.digest is None:
        raise RtmpProtocolError("RTMP handshake: S1 has no valid digest")
    if not answer_is_signed(s2, c1.digest, SERVER_KEY):
        raise RtmpProtocolError("RTMP handshake: S2 signature mismatch")
    return s1


def client_c2(s1: Hello, random_bytes: RandomBytes) -> bytes:
    """C2: signed from S1's digest when it has one (what FFmpeg's player does),
    otherwise an echo of S1."""
    if s1.digest is None:
        return s1.raw
    return signed_answer(s1.digest, PLAYER_KEY, random_bytes(SIGNED_LEN))
