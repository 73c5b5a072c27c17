"""RTSP authentication: Basic and Digest MD5 (RFC 2617 as RTSP uses it).

Cameras and FFmpeg mostly do Digest without qop (response =
MD5(HA1:nonce:HA2)); qop=auth is accepted when a peer sends it. The server
keeps HA1 = MD5(user:realm:password), never the password, so checking needs
only HA1 and the request method. The client side (route puller) answers a
401's challenge given a username and password.

A server checks Digest credentials with `check_digest`: the hash, the
realm, the credentials' `uri` against the request's (RFC 2617 §3.2.2.5,
rule in `digest_uri_matches`) and the nonce's age. Nonces and when they
were issued stay the server's; it passes the issue time (None: a nonce it
never issued) and `now` from the same clock.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from ...errors import ProtocolError
from ._params import split_quoted, unquote


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _auth_params(text: str) -> dict[str, str]:
    """`k="v", k2=v2` → {k: v} with lower-case keys."""
    params: dict[str, str] = {}
    for piece in split_quoted(text, ","):
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        if not eq or not name.strip():
            raise ProtocolError(f"malformed auth parameter {piece[:40]!r}")
        params[name.strip().lower()] = unquote(value.strip())
    return params


def _split_scheme(text: str) -> tuple[str, str]:
    scheme, _, rest = text.strip().partition(" ")
    return scheme.lower(), rest.strip()


@dataclass
class BasicChallenge:
    realm: str

    def __str__(self) -> str:
        return f'Basic realm="{self.realm}"'


@dataclass
class DigestChallenge:
    """The server's `WWW-Authenticate: Digest ...`."""

    realm: str
    nonce: str
    opaque: str | None = None
    stale: bool = False
    algorithm: str | None = None
    qop: str | None = None

    def __str__(self) -> str:
        parts = [f'realm="{self.realm}"', f'nonce="{self.nonce}"']
        if self.opaque is not None:
            parts.append(f'opaque="{self.opaque}"')
        if self.stale:
            parts.append("stale=TRUE")
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.qop is not None:
            parts.append(f'qop="{self.qop}"')
        return "Digest " + ", ".join(parts)


Challenge = BasicChallenge | DigestChallenge


def parse_challenge(text: str) -> Challenge:
    """One WWW-Authenticate value."""
    scheme, rest = _split_scheme(text)
    params = _auth_params(rest)
    if scheme == "basic":
        return BasicChallenge(params.get("realm", ""))
    if scheme == "digest":
        if "nonce" not in params:
            raise ProtocolError("Digest challenge without nonce")
        return DigestChallenge(
            realm=params.get("realm", ""), nonce=params["nonce"], opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true", algorithm=params.get("algorithm"),
            qop=params.get("qop"))
    raise ProtocolError(f"unsupported auth scheme {scheme[:20]!r}")


def pick_challenge(values: Iterable[str]) -> Challenge:
    """The best of a 401's WWW-Authenticate values: Digest MD5 over Basic;
    values we cannot use are skipped."""
    basic: BasicChallenge | None = None
    for value in values:
        try:
            challenge = parse_challenge(value)
        except ProtocolError:
            continue
        if isinstance(challenge, DigestChallenge):
            if challenge.algorithm is None or challenge.algorithm.upper() == "MD5":
                return challenge
        elif basic is None:
            basic = challenge
    if basic is None:
        raise ProtocolError("no usable WWW-Authenticate challenge")
    return basic


@dataclass
class BasicCredentials:
    username: str
    password: str

    def __str__(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode("utf-8")).decode("ascii")
        return f"Basic {token}"


@dataclass
class DigestCredentials:
    """The fields of an `Authorization: Digest ...` header."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None

    def __str__(self) -> str:
        parts = [f'username="{self.username}"', f'realm="{self.realm}"', f'nonce="{self.nonce}"',
                 f'uri="{self.uri}"', f'response="{self.response}"']
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.opaque is not None:
            parts.append(f'opaque="{self.opaque}"')
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f'cnonce="{self.cnonce}"']
        return "Digest " + ", ".join(parts)


Credentials = BasicCredentials | DigestCredentials


def parse_authorization(text: str) -> Credentials:
    """An Authorization header value (Basic or Digest)."""
    scheme, rest = _split_scheme(text)
    if scheme == "basic":
        try:
            raw = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError("bad Basic credentials") from exc
        user, colon, password = raw.partition(":")
        if not colon:
            raise ProtocolError("Basic credentials without ':'")
        return BasicCredentials(user, password)
    if scheme == "digest":
        p = _auth_params(rest)
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            raise ProtocolError(f"Digest credentials without {', '.join(missing)}")
        return DigestCredentials(
            username=p["username"], realm=p["realm"], nonce=p["nonce"], uri=p["uri"],
            response=p["response"], algorithm=p.get("algorithm"), opaque=p.get("opaque"),
            qop=p.get("qop"), nc=p.get("nc"), cnonce=p.get("cnonce"))
    raise ProtocolError(f"unsupported auth scheme {scheme[:20]!r}")


def digest_ha1(username: str, realm: str, password: str) -> str:
    """HA1 = MD5(username:realm:password), what the user store keeps."""
    return _md5(f"{username}:{realm}:{password}")


def digest_response(ha1: str, nonce: str, method: str, uri: str, qop: str | None = None,
                    nc: str | None = None, cnonce: str | None = None) -> str:
    """The `response` field (RFC 2617 §3.2.2.1, qop absent or "auth")."""
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def verify_digest(auth: DigestCredentials, method: str, ha1: str) -> bool:
    """Whether `auth` proves knowledge of the password behind `ha1`.

    The hash alone (constant time): a server uses `check_digest`, which
    also checks the realm, the URI and the nonce.
    """
    if auth.algorithm is not None and auth.algorithm.upper() != "MD5":
        return False
    if auth.qop is not None:
        if auth.qop.lower() != "auth" or not auth.nc or auth.cnonce is None:
            return False
    expected = digest_response(ha1.lower(), auth.nonce, method, auth.uri, auth.qop, auth.nc, auth.cnonce)
    return hmac.compare_digest(expected, auth.response.lower())


def _uri_parts(uri: str) -> tuple[str, str]:
    """(path, query) of an absolute or relative URI, trailing "/" dropped;
    scheme and authority do not take part (a proxy or NAT may rewrite the
    host, and the request line already reached this server)."""
    rest = uri
    if "://" in rest:
        rest = rest.partition("://")[2]
        slash = rest.find("/")
        rest = rest[slash:] if slash >= 0 else "/"
    path, _, query = rest.partition("?")
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path or "/", query


def digest_uri_matches(credentials_uri: str, request_uri: str) -> bool:
    """Whether Digest credentials computed for `credentials_uri` may
    authorize a request for `request_uri` (RFC 2617 §3.2.2.5).

    The rule: the two are the same resource when scheme and authority are
    set aside (so `rtsp://h/live/a` and `/live/a` match) and a trailing "/"
    is ignored; or the request names one more path segment below the
    credentials' URI, with the same query (a track's SETUP, e.g.
    `/live/a/trackID=0`, by a client that computed its response for the
    aggregate `/live/a` it authenticated for), including a client that
    appends the track after the query (`/live/a?t=1/trackID=0` for
    `/live/a?t=1`). Nothing else: credentials for `/live/a` never open
    `/live/b` or `/live/a/b/c`.
    """
    cred_path, cred_query = _uri_parts(credentials_uri)
    req_path, req_query = _uri_parts(request_uri)
    if cred_query == req_query:
        if cred_path == req_path:
            return True
        parent, _, segment = req_path.rpartition("/")
        if segment and (parent or "/") == cred_path and cred_path != "/":
            return True
    if cred_query and req_path == cred_path:
        head, _, segment = req_query.rpartition("/")
        return bool(segment) and head == cred_query
    return False


class DigestVerdict(enum.Enum):
    OK = "ok"
    #: The response is right but the nonce is unknown or past its TTL:
    #: challenge again with `stale=TRUE` (the client retries without
    #: asking its user).
    STALE = "stale"
    BAD = "bad"


def check_digest(auth: DigestCredentials, *, method: str, request_uri: str, ha1: str, realm: str,
                 issued: float | None, now: float, ttl: float) -> DigestVerdict:
    """The server's whole check of Digest credentials for one request.

    `issued` is when this server issued `auth.nonce` (None: never), `now`
    the same clock's time, `ttl` how long a nonce is good for."""
    if auth.realm != realm or not digest_uri_matches(auth.uri, request_uri):
        return DigestVerdict.BAD
    if not verify_digest(auth, method, ha1):
        return DigestVerdict.BAD
    if issued is None or not 0 <= now - issued <= ttl:
        return DigestVerdict.STALE
    return DigestVerdict.OK


def authorization_for(challenge: Challenge | str | Iterable[str], username: str, password: str,
                      method: str, uri: str, *, cnonce: str | None = None, nc: int = 1) -> str:
    """The Authorization value answering a 401 (client side).

    `challenge` is a parsed challenge, one WWW-Authenticate value, or all of
    them (Digest preferred). `cnonce` only matters with qop=auth; a random
    one is drawn when not given.
    """
    if isinstance(challenge, str):
        challenge = parse_challenge(challenge)
    elif not isinstance(challenge, (BasicChallenge, DigestChallenge)):
        challenge = pick_challenge(challenge)
    if isinstance(challenge, BasicChallenge):
        return str(BasicCredentials(username, password))
    ha1 = digest_ha1(username, challenge.realm, password)
    qop: str | None = None
    nc_text: str | None = None
    if challenge.qop is not None:
        if "auth" not in (q.strip().lower() for q in challenge.qop.split(",")):
            raise ProtocolError(f"unsupported Digest qop {challenge.qop[:30]!r}")
        qop, nc_text = "auth", f"{nc:08x}"
        cnonce = cnonce if cnonce is not None else secrets.token_hex(8)
    response = digest_response(ha1, challenge.nonce, method, uri, qop, nc_text, cnonce)
    return str(DigestCredentials(
        username=username, realm=challenge.realm, nonce=challenge.nonce, uri=uri,
        response=response, algorithm=challenge.algorithm, opaque=challenge.opaque,
        qop=qop, nc=nc_text, cnonce=cnonce if qop else None))
