"""Password hashes: salted scrypt for new passwords, legacy forms for old files.

The reference stores plain passwords (or their unsalted MD5) in users.json; we
store a slow salted hash instead, plus the RTSP Digest HA1 because Digest needs
md5(user:realm:password) and the plain password is never kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

REALM = "ipchub"
SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# scrypt needs 128*n*r bytes; leave headroom over OpenSSL's 32 MiB default.
_MAXMEM = 64 * 1024 * 1024
# Refuse absurd cost parameters from a tampered file (CPU/memory exhaustion).
_MAX_N = 2**20

_HEX = frozenset("0123456789abcdefABCDEF")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(pw: str) -> str:
    """`scrypt$N$r$p$<b64 salt>$<b64 hash>`: parameters travel with the hash so
    they can be raised later without breaking stored users."""
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.scrypt(pw.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, maxmem=_MAXMEM, dklen=HASH_BYTES)
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def is_md5_hex(stored: str) -> bool:
    """The reference treats any 32-hex-digit password as an MD5 already."""
    return len(stored) == 32 and all(c in _HEX for c in stored)


def is_scrypt(stored: str) -> bool:
    return stored.startswith(SCHEME + "$")


def needs_rehash(stored: str) -> bool:
    """True for legacy forms (plain, MD5) and for weaker scrypt parameters."""
    if not is_scrypt(stored):
        return True
    parts = stored.split("$")
    return parts[1:4] != [str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]


def _verify_scrypt(stored: str, pw: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 6:
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, want = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return False
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
            and salt and 16 <= len(want) <= 64):
        return False
    try:
        got = hashlib.scrypt(pw.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                             maxmem=max(_MAXMEM, 130 * n * r), dklen=len(want))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, want)


def verify_password(stored: str, pw: str) -> bool:
    """Check `pw` against a stored value in any form we may have loaded.

    scrypt is ours; a 32-hex value is the reference's MD5 mode (compared as
    md5(pw), never accepting the hash itself as a password); anything else is
    a reference plain-text password. All comparisons are constant-time.
    """
    if not stored:
        return False
    if is_scrypt(stored):
        return _verify_scrypt(stored, pw)
    if is_md5_hex(stored):
        got = hashlib.md5(pw.encode("utf-8")).hexdigest()
        return hmac.compare_digest(got, stored.lower())
    return hmac.compare_digest(pw.encode("utf-8"), stored.encode("utf-8"))


def digest_ha1(user: str, realm: str, pw: str) -> str:
    """RFC 2617 HA1 = md5("user:realm:password"), hex; what Digest auth needs."""
    return hashlib.md5(f"{user}:{realm}:{pw}".encode("utf-8")).hexdigest()
