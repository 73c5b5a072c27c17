"""Basic and Digest auth against RFC 2617's worked example and vectors
computed with coreutils md5sum (not with the code under test)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import ProtocolError
from hub.media.rtsp import RtspResponse
from hub.media.rtsp.auth import (
    BasicChallenge, BasicCredentials, DigestChallenge, DigestCredentials, DigestVerdict, authorization_for,
    check_digest, digest_ha1, digest_uri_matches, parse_authorization, parse_challenge, pick_challenge,
    verify_digest,
)

DATA = Path(__file__).resolve().parent.parent / "data"

# RFC 2617 §3.5.
RFC_CHALLENGE = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
RFC_AUTHORIZATION = ('Digest username="Mufasa", realm="testrealm@host.com", '
                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
                     'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
                     'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
RFC_HA1 = "939e7578ed9e3c518a452acee763bce9"  # md5("Mufasa:testrealm@host.com:Circle Of Life")

# A camera 401 (tests/data/rtsp_digest_401.bin) answered for admin / 12345:
# HA1 = md5("admin:IP Camera(C6163):12345"), response = md5(HA1:nonce:md5(DESCRIBE:uri)).
CAM_URI = "rtsp://192.168.1.64:554/Streaming/Channels/101"
CAM_HA1 = "42c9686c56145b221956f98ce54a6b7f"
CAM_AUTHORIZATION = ('Digest username="admin", realm="IP Camera(C6163)", '
                     'nonce="6c2b6e1bc4d3a2a4fd8d7d1b0e2ab3f1", '
                     f'uri="{CAM_URI}", response="5896d2931dc8ba3ca28f37f91709331e"')


def test_ha1() -> None:
    assert digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == RFC_HA1
    assert digest_ha1("admin", "IP Camera(C6163)", "12345") == CAM_HA1


def test_rfc2617_example_with_qop_auth() -> None:
    auth = parse_authorization(RFC_AUTHORIZATION)
    assert auth == DigestCredentials(
        username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1",
        opaque="5ccc069c403ebaf9f0171e9517f40e41", qop="auth", nc="00000001", cnonce="0a4f113b")
    assert verify_digest(auth, "GET", RFC_HA1)
    assert not verify_digest(auth, "DESCRIBE", RFC_HA1)
    assert not verify_digest(auth, "GET", digest_ha1("Mufasa", "testrealm@host.com", "circle of life"))
    # The client side reproduces the RFC's header from the challenge.
    value = authorization_for(RFC_CHALLENGE, "Mufasa", "Circle Of Life", "GET", "/dir/index.html",
                              cnonce="0a4f113b")
    assert value == ('Digest username="Mufasa", realm="testrealm@host.com", '
                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
                     'response="6629fae49393a05397450978507c4ef1", '
                     'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001, cnonce="0a4f113b"')


def test_camera_401_client_answer_and_server_check() -> None:
    resp = RtspResponse.parse((DATA / "rtsp_digest_401.bin").read_bytes())
    assert resp.status == 401
    values = resp.headers.get_all("WWW-Authenticate")
    challenge = pick_challenge(values)
    assert challenge == DigestChallenge(realm="IP Camera(C6163)", nonce="6c2b6e1bc4d3a2a4fd8d7d1b0e2ab3f1")
    value = authorization_for(values, "admin", "12345", "DESCRIBE", CAM_URI)
    assert value == CAM_AUTHORIZATION
    auth = parse_authorization(value)
    assert isinstance(auth, DigestCredentials)
    assert verify_digest(auth, "DESCRIBE", CAM_HA1)
    assert verify_digest(auth, "DESCRIBE", CAM_HA1.upper())
    assert not verify_digest(auth, "SETUP", CAM_HA1)
    auth.algorithm = "SHA-256"
    assert not verify_digest(auth, "DESCRIBE", CAM_HA1)


def test_server_challenge_format() -> None:
    assert str(DigestChallenge("hub", "0123abcd")) == 'Digest realm="hub", nonce="0123abcd"'
    full = DigestChallenge("hub", "n", opaque="o", stale=True, algorithm="MD5", qop="auth")
    assert str(full) == 'Digest realm="hub", nonce="n", opaque="o", stale=TRUE, algorithm=MD5, qop="auth"'
    assert parse_challenge(str(full)) == full
    assert str(BasicChallenge("hub")) == 'Basic realm="hub"'
    assert parse_challenge('basic realm="hub"') == BasicChallenge("hub")


def test_basic() -> None:
    assert parse_authorization("Basic YWRtaW46MTIzNDU=") == BasicCredentials("admin", "12345")
    assert str(BasicCredentials("admin", "12345")) == "Basic YWRtaW46MTIzNDU="
    assert parse_authorization("Basic dTpwOnE=") == BasicCredentials("u", "p:q")
    assert authorization_for(['Basic realm="x"'], "admin", "12345", "DESCRIBE", "rtsp://h/s") == \
        "Basic YWRtaW46MTIzNDU="
    for bad in ("Basic !!!", "Basic YWRtaW4=", "Basic /w==", "Bearer abc", "Digest username=\"a\""):
        with pytest.raises(ProtocolError):
            parse_authorization(bad)


def test_pick_challenge_preferences() -> None:
    assert isinstance(pick_challenge(['Basic realm="a"', 'Digest realm="a", nonce="n"']), DigestChallenge)
    # An unusable digest (other algorithm, or broken) falls back to Basic.
    assert pick_challenge(['Digest realm="a", nonce="n", algorithm=SHA-256', "Digest realm",
                           'Basic realm="a"']) == BasicChallenge("a")
    with pytest.raises(ProtocolError):
        pick_challenge(["Negotiate abc"])
    with pytest.raises(ProtocolError):
        authorization_for('Digest realm="a", nonce="n", qop="auth-int"', "u", "p", "PLAY", "rtsp://h/s")


@given(st.text(max_size=100))
def test_auth_parsers_raise_only_protocol_error(text: str) -> None:
    for parse in (parse_authorization, parse_challenge):
        try:
            parse(text)
        except ProtocolError:
            pass


# -- the server's whole check (issue 12, defect 8) ------------------------------------

REALM = "ipchub"
HA1 = hashlib.md5(b"alice:ipchub:s3cret").hexdigest()


def creds_for(method: str, uri: str, nonce: str = "n0nce", realm: str = REALM) -> DigestCredentials:
    """Credentials as a client computes them (hashlib here, not the code under test)."""
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{HA1}:{nonce}:{ha2}".encode()).hexdigest()
    return DigestCredentials(username="alice", realm=realm, nonce=nonce, uri=uri, response=response)


def check(auth: DigestCredentials, method: str, request_uri: str, issued: float | None = 100.0,
          now: float = 110.0) -> DigestVerdict:
    return check_digest(auth, method=method, request_uri=request_uri, ha1=HA1, realm=REALM, issued=issued,
                        now=now, ttl=60.0)


def test_check_digest_accepts_the_request_it_was_computed_for() -> None:
    uri = "rtsp://127.0.0.1:1554/live/a"
    assert check(creds_for("DESCRIBE", uri), "DESCRIBE", uri) is DigestVerdict.OK


def test_defect8_credentials_for_another_path_are_refused() -> None:
    """A response computed (correctly) for /live/other does not open /live/a."""
    auth = creds_for("DESCRIBE", "rtsp://127.0.0.1:1554/live/other")
    assert verify_digest(auth, "DESCRIBE", HA1)  # the hash alone is right...
    assert check(auth, "DESCRIBE", "rtsp://127.0.0.1:1554/live/a") is DigestVerdict.BAD  # ...the URI is not


def test_stale_and_unknown_nonces() -> None:
    uri = "rtsp://h/live/a"
    auth = creds_for("DESCRIBE", uri)
    assert check(auth, "DESCRIBE", uri, issued=100.0, now=160.0) is DigestVerdict.OK  # at the TTL
    assert check(auth, "DESCRIBE", uri, issued=100.0, now=160.5) is DigestVerdict.STALE
    assert check(auth, "DESCRIBE", uri, issued=None) is DigestVerdict.STALE  # never issued here
    assert check(auth, "DESCRIBE", uri, issued=200.0, now=100.0) is DigestVerdict.STALE  # from the future
    # Stale is only said to a client that knows the password.
    wrong = dataclasses.replace(auth, response="0" * 32)
    assert check(wrong, "DESCRIBE", uri, issued=None) is DigestVerdict.BAD


def test_wrong_realm_method_or_hash_are_bad() -> None:
    uri = "rtsp://h/live/a"
    assert check(creds_for("DESCRIBE", uri, realm="other"), "DESCRIBE", uri) is DigestVerdict.BAD
    assert check(creds_for("DESCRIBE", uri), "SETUP", uri) is DigestVerdict.BAD


@pytest.mark.parametrize("cred_uri, request_uri", [
    ("rtsp://h:1554/live/a", "rtsp://h:1554/live/a"),
    ("/live/a", "rtsp://h:1554/live/a"),  # relative for absolute
    ("rtsp://h:1554/live/a", "/live/a"),
    ("rtsp://other-host/live/a", "rtsp://h:1554/live/a"),  # host rewritten on the way
    ("rtsp://h/live/a/", "rtsp://h/live/a"),  # a trailing slash
    ("rtsp://h/live/a", "rtsp://h/live/a/trackID=0"),  # a track under what was authenticated
    ("rtsp://h/live/a/", "rtsp://h/live/a/trackID=1"),
    ("rtsp://h/live/a?token=1", "rtsp://h/live/a/trackID=0?token=1"),
    ("rtsp://h/live/a?token=1", "rtsp://h/live/a?token=1/trackID=0"),  # FFmpeg appends after the query
    ("*", "*"),
])
def test_digest_uri_matches(cred_uri: str, request_uri: str) -> None:
    assert digest_uri_matches(cred_uri, request_uri)


@pytest.mark.parametrize("cred_uri, request_uri", [
    ("rtsp://h/live/b", "rtsp://h/live/a"),
    ("rtsp://h/live", "rtsp://h/live/a/trackID=0"),  # two segments below
    ("rtsp://h/live/a/trackID=0", "rtsp://h/live/a"),  # a track's credentials for the aggregate
    ("rtsp://h/", "rtsp://h/live"),  # the root opens nothing below it
    ("rtsp://h/live/a?token=1", "rtsp://h/live/a?token=2"),
    ("rtsp://h/live/a", "rtsp://h/live/a?x=1"),
    ("rtsp://h/live/a?t", "rtsp://h/live/a?t/x/y"),
    ("rtsp://h/live/ab", "rtsp://h/live/a"),
    ("rtsp://h/live/a", "rtsp://h/live/ab"),
    ("rtsp://h/live/%61", "rtsp://h/live/a"),  # no percent-decoding: never looser
    ("*", "rtsp://h/live/a"),
])
def test_digest_uri_mismatches(cred_uri: str, request_uri: str) -> None:
    assert not digest_uri_matches(cred_uri, request_uri)
