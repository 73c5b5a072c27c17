"""RTMP handshake: simple and digest forms, byte-exact against an independent
computation and checked with the player-side verification."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hub.media.rtmp.constants import RtmpProtocolError
from hub.media.rtmp.handshake import (
    CLIENT_VERSION, SERVER_VERSION, Hello, check_server_answer, client_c2, client_hello,
    digest_offset, find_digest, server_answer, answer_is_signed, PLAYER_KEY,
)
from rtmp_testkit import DATA, Counter

FP_TEXT = b"Genuine Adobe Flash Player 001"
FMS_TEXT = b"Genuine Adobe Flash Media Server 001"
TAIL = bytes.fromhex("F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")


def _sha(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _offset(packet: bytes, base: int) -> int:
    return sum(packet[base:base + 4]) % 728 + base + 4


@pytest.mark.parametrize("scheme, base", [(0, 8), (1, 772)])
def test_digest_answer_is_byte_exact(scheme: int, base: int) -> None:
    c0c1, c1 = client_hello(Counter(b"c"), scheme)
    assert c0c1[0] == 3 and len(c0c1) == 1537
    assert c0c1[5:9] == CLIENT_VERSION
    # The client digest, computed here from scratch.
    raw = c0c1[1:]
    off = _offset(raw, base)
    assert raw[off:off + 32] == _sha(FP_TEXT, raw[:off] + raw[off + 32:])
    assert c1.scheme == scheme and c1.digest == raw[off:off + 32]

    rnd = Counter(b"s")
    answer, parsed = server_answer(c0c1, rnd)
    assert parsed.scheme == scheme and parsed.raw == raw
    # Expected S0+S1+S2 from the same random stream, computed independently.
    expect_rnd = Counter(b"s")
    s1 = bytearray(b"\x00\x00\x00\x00" + SERVER_VERSION + expect_rnd(1528))
    soff = _offset(bytes(s1), base)
    s1[soff:soff + 32] = _sha(FMS_TEXT, bytes(s1[:soff] + s1[soff + 32:]))
    s2_random = expect_rnd(1504)
    s2 = s2_random + _sha(_sha(FMS_TEXT + TAIL, c1.digest), s2_random)
    assert answer == b"\x03" + bytes(s1) + s2
    # And a strict player accepts it.
    s1_parsed = check_server_answer(answer, c1)
    assert s1_parsed.scheme == scheme and s1_parsed.version == SERVER_VERSION


def test_simple_answer_echoes_c1() -> None:
    c0c1, c1 = client_hello(Counter(b"c"), None)
    assert c0c1[5:9] == b"\x00\x00\x00\x00" and c1.digest is None
    answer, parsed = server_answer(c0c1, Counter(b"s"))
    assert parsed.scheme is None
    assert answer[:9] == b"\x03\x00\x00\x00\x00\x00\x00\x00\x00"
    assert answer[9:1537] == Counter(b"s")(1528)
    assert answer[1537:] == c0c1[1:]
    assert check_server_answer(answer, c1).digest is None


def test_version_without_valid_digest_gets_the_simple_answer() -> None:
    c1 = b"\x00\x00\x00\x00" + CLIENT_VERSION + Counter(b"x")(1528)
    assert find_digest(c1, FP_TEXT) is None
    answer, parsed = server_answer(b"\x03" + c1, Counter(b"s"))
    assert parsed.scheme is None and answer[1537:] == c1


def test_player_check_rejects_a_tampered_answer() -> None:
    c0c1, c1 = client_hello(Counter(b"c"), 0)
    answer = bytearray(server_answer(c0c1, Counter(b"s"))[0])
    for index in (1 + 700, 1537 + 5, len(answer) - 1):  # S1 body, S2 random, S2 signature
        bad = bytearray(answer)
        bad[index] ^= 1
        with pytest.raises(RtmpProtocolError):
            check_server_answer(bytes(bad), c1)


def test_c2_signed_from_s1_digest() -> None:
    c0c1, c1 = client_hello(Counter(b"c"), 1)
    answer, _ = server_answer(c0c1, Counter(b"s"))
    s1 = check_server_answer(answer, c1)
    assert s1.digest is not None
    c2 = client_c2(s1, Counter(b"r"))
    assert answer_is_signed(c2, s1.digest, PLAYER_KEY)
    assert not answer_is_signed(c2[:-1] + bytes((c2[-1] ^ 1,)), s1.digest, PLAYER_KEY)


@pytest.mark.parametrize("c0c1", [b"\x06" + bytes(1536), b"\x03" + bytes(1535), b""])
def test_bad_c0c1(c0c1: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        server_answer(c0c1, Counter())


def test_hello_roundtrip_and_length() -> None:
    raw = Counter(b"h")(1536)
    hello = Hello.parse(raw, FP_TEXT)
    assert bytes(hello) == raw and hello.time == int.from_bytes(raw[:4], "big")
    with pytest.raises(RtmpProtocolError):
        Hello.parse(raw[:-1], FP_TEXT)


@pytest.mark.parametrize("name, version", [
    ("rtmp_ffmpeg_publish.bin", bytes((9, 0, 124, 2))),
    ("rtmp_ffmpeg8_hevc_publish.bin", bytes((9, 0, 124, 2))),
])
def test_real_ffmpeg_c1_carries_a_scheme_0_digest(name: str, version: bytes) -> None:
    data = (DATA / name).read_bytes()
    assert data[0] == 3
    c1 = Hello.parse(data[1:1537], FP_TEXT)
    assert c1.version == version and c1.scheme == 0
    assert digest_offset(c1.raw, 0) == _offset(c1.raw, 8)
    # A publishing FFmpeg answers with C2 = S1 (ours: time 0, our version).
    assert data[1537:1545] == b"\x00\x00\x00\x00" + SERVER_VERSION
