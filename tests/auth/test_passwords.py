from __future__ import annotations

import base64
import re

import pytest

from hub.auth.passwords import REALM, digest_ha1, hash_password, needs_rehash, verify_password

# RFC 7914 section 12, third vector: scrypt("pleaseletmein", "SodiumChloride", N=16384, r=8, p=1, 64)
RFC7914_HASH = bytes.fromhex(
    "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
    "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def test_hash_format() -> None:
    h = hash_password("admin")
    assert re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}", h), h
    assert h != hash_password("admin")  # salted


def test_verify_right_and_wrong() -> None:
    h = hash_password("s3cret-å")
    assert verify_password(h, "s3cret-å")
    assert not verify_password(h, "s3cret-a")
    assert not verify_password(h, "")


def test_verify_known_scrypt_vector() -> None:
    stored = f"scrypt$16384$8$1${_b64(b'SodiumChloride')}${_b64(RFC7914_HASH)}"
    assert verify_password(stored, "pleaseletmein")
    assert not verify_password(stored, "pleaseletmeout")


def test_legacy_plain() -> None:
    assert verify_password("admin", "admin")
    assert not verify_password("admin", "Admin")
    assert not verify_password("", "")


def test_legacy_md5_and_not_the_hash_itself() -> None:
    md5_admin = "21232f297a57a5a743894a0e4a801fc3"  # md5sum of "admin"
    assert verify_password(md5_admin, "admin")
    assert verify_password(md5_admin.upper(), "admin")
    assert not verify_password(md5_admin, md5_admin)
    assert not verify_password(md5_admin, "wrong")


@pytest.mark.parametrize("stored", [
    "scrypt$", "scrypt$16384$8$1$!!!$AAAA", "scrypt$x$8$1$AAAA$AAAA",
    "scrypt$1000$8$1$AAAAAAAA$" + "A" * 43,           # n not a power of two
    "scrypt$1073741824$8$1$AAAAAAAA$" + "A" * 43,     # n absurdly large
    "scrypt$16384$8$1$AAAAAAAA$AAAA",                 # hash too short
])
def test_malformed_scrypt_is_false_not_an_error(stored: str) -> None:
    assert verify_password(stored, "x") is False


def test_ha1_known_vector() -> None:
    # printf 'admin:ipchub:admin' | md5sum
    assert REALM == "ipchub"
    assert digest_ha1("admin", REALM, "admin") == "5173c1098f2c4e3e41091ac1376e503b"


def test_needs_rehash() -> None:
    assert not needs_rehash(hash_password("x"))
    assert needs_rehash("admin")
    assert needs_rehash("21232f297a57a5a743894a0e4a801fc3")
    assert needs_rehash(f"scrypt$1024$8$1${_b64(b'salt')}${_b64(bytes(32))}")
