"""Password hashes, rights patterns and tokens: pure functions and objects,
no I/O beyond the token key file."""

from __future__ import annotations

from .passwords import REALM, digest_ha1, hash_password, needs_rehash, verify_password
from .rights import RightsPattern, effective_rights, validate_rights
from .tokens import Claims, TokenService, generate_key, load_or_create_key

__all__ = ["REALM", "Claims", "RightsPattern", "TokenService", "digest_ha1", "effective_rights",
           "generate_key", "hash_password", "load_or_create_key", "needs_rehash",
           "validate_rights", "verify_password"]
