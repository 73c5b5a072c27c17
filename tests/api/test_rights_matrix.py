"""Push/pull rights set through the REST API, checked where they matter: on
a server started with `--auth`, HTTP-FLV/HLS players with `?token=` and RTSP
clients with Digest credentials (API.md sections 2 and 5).

Rights masks: `;` separates masks, `*` is any number of segments (at the end
or alone), `+` exactly one segment; an admin with empty rights gets `*`.
Two streams are pushed by ffmpeg as admin; RTSP publishing rights are
checked with raw ANNOUNCEs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import shutil
import socket
import time
from typing import Any, Iterator

import pytest

from tests.conftest import HubServer, start_server
from tests.e2e.tools import Pusher, make_media

pytestmark = pytest.mark.e2e

REALM = "ipchub"
LIVE = ["/live/a", "/cam/door/hd"]

# name -> user fields (password is always "pw-" + name)
USERS: dict[str, dict[str, Any]] = {
    "u_star": {"pull": "*"},
    "u_live": {"pull": "/live/*"},
    "u_exact": {"pull": "/live/a"},
    "u_plus": {"pull": "/cam/+/hd"},
    "u_multi": {"pull": "/nothing;/cam/+/hd/*"},
    "u_dir": {"pull": "/cam/*"},
    "u_seg": {"pull": "/cam/+"},          # + is one segment: not /cam/door/hd
    "u_prefix": {"pull": "/live"},        # exact: not /live/a
    "u_none": {"push": "*"},              # no pull right at all
    "u_admin": {"admin": True},           # admin, empty rights -> *
    "p_live": {"push": "/live/*"},
    "p_plus": {"push": "/cam/+/in;/x"},
}

CAN_PULL = {
    "/live/a": {"u_star", "u_live", "u_exact", "u_admin"},
    "/cam/door/hd": {"u_star", "u_plus", "u_multi", "u_dir", "u_admin"},
}
PULL_CASES = [(u, p) for p in LIVE for u in USERS if not u.startswith("p_")]

PUSH_CASES = [("p_live", "/live/pushed", 200), ("p_live", "/cam/door/in", 403),
              ("p_plus", "/cam/door/in", 200), ("p_plus", "/cam/door/in/deeper", 403),
              ("p_plus", "/x", 200), ("p_plus", "/x/y", 403), ("u_star", "/live/pushed2", 403),
              # A track-like last segment is still part of the path published
              # (the push right was once checked on "/x" only).
              ("p_plus", "/x/trackID=0", 403),
              ("u_admin", "/any/where", 200)]


def password(name: str) -> str:
    return "pw-" + name


def _call(srv: HubServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


class Env:
    def __init__(self, srv: HubServer, tokens: dict[str, str], refresh: str) -> None:
        self.srv = srv
        self.tokens = tokens
        self.refresh = refresh


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg CLI is required for the rights matrix (make sysdeps)")
    tmp = tmp_path_factory.mktemp("rights")
    media = make_media(tmp_path_factory.mktemp("media"), "h264")
    srv = start_server(tmp, "--shards", "2", "--fronts", "2", "--auth")
    pushers: list[Pusher] = []
    try:
        status, pair = _call(srv, "POST", "/api/v1/login", {"username": "admin", "password": "admin"})
        assert status == 200, (status, pair)
        admin = pair["access_token"]
        for name, fields in USERS.items():
            status, body = _call(srv, "POST", f"/api/v1/users?token={admin}",
                                 {"name": name, "password": password(name), **fields})
            assert status == 200, (name, status, body)
        tokens = {"admin": admin}
        refresh = ""
        for name in USERS:
            status, pair = _call(srv, "POST", "/api/v1/login", {"username": name, "password": password(name)})
            assert status == 200, (name, status, pair)
            tokens[name] = pair["access_token"]
            refresh = pair["refresh_token"]
        for path in LIVE:
            url = f"rtsp://admin:admin@127.0.0.1:{srv.port}{path}"
            pushers.append(Pusher(url, media).start())
        deadline = time.monotonic() + 15
        for path in LIVE:
            while _call(srv, "GET", f"/api/v1/streams{path}?token={admin}")[0] != 200:
                assert time.monotonic() < deadline, f"{path} not live:\n{srv.log()[-3000:]}"
                time.sleep(0.2)
        yield Env(srv, tokens, refresh)
    finally:
        for p in pushers:
            p.stop()
        srv.stop()


# -- the rights as the API shows them ---------------------------------------------

def test_rights_stored_as_given(env: Env) -> None:
    admin = env.tokens["admin"]
    for name, fields in USERS.items():
        status, user = _call(env.srv, "GET", f"/api/v1/users/{name}?token={admin}")
        assert status == 200
        want = {"name": name, **{k: v for k, v in fields.items() if v}}
        if fields.get("admin"):
            want.update(push="*", pull="*")
        assert user == want


# -- HTTP players: ?token= with the pull right ----------------------------------------

def http_status(srv: HubServer, target: str) -> tuple[int, bytes]:
    """Status and the first bytes of a (possibly endless) HTTP response."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 200:
            while len(rest) < 3:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        return status, rest


@pytest.mark.parametrize("user,path", PULL_CASES)
def test_flv_token_pull_right(env: Env, user: str, path: str) -> None:
    status, body = http_status(env.srv, f"/streams{path}.flv?token={env.tokens[user]}")
    if user in CAN_PULL[path]:
        assert status == 200 and body.startswith(b"FLV"), (status, body[:40])
    else:
        assert status == 403, status


@pytest.mark.parametrize("path", LIVE)
def test_flv_without_valid_token(env: Env, path: str) -> None:                   # B2 #6, #7
    assert http_status(env.srv, f"/streams{path}.flv")[0] == 401
    assert http_status(env.srv, f"/streams{path}.flv?token=bogus")[0] == 401
    # A refresh token is not an access token.
    assert http_status(env.srv, f"/streams{path}.flv?token={env.refresh}")[0] == 401
    # The admin's token plays anything (B2 #8).
    assert http_status(env.srv, f"/streams{path}.flv?token={env.tokens['admin']}")[0] == 200


def test_hls_playlist_needs_the_pull_right(env: Env) -> None:                    # B2 #11
    assert http_status(env.srv, "/streams/live/a.m3u8")[0] == 401
    assert http_status(env.srv, f"/streams/live/a.m3u8?token={env.tokens['u_plus']}")[0] == 403
    assert http_status(env.srv, "/streams/live/a/1.ts")[0] == 401                 # B2 #13
    assert http_status(env.srv, f"/streams/live/a/1.ts?token={env.tokens['u_plus']}")[0] == 403


def test_crossdomain_needs_no_token(env: Env) -> None:                           # B2 #14
    assert http_status(env.srv, "/streams/crossdomain.xml")[0] == 200


# -- RTSP: Digest credentials with the pull/push right --------------------------------

class Rtsp:
    def __init__(self, srv: HubServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        self.cseq = 0
        self.buf = b""

    def request(self, method: str, uri: str, headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[int, dict[str, str]]:
        self.cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {method}")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        text = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in text[1:])}
        length = int(hdrs.get("content-length", "0"))
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        self.buf = self.buf[length:]
        assert hdrs.get("cseq") == str(self.cseq)
        return int(text[0].split()[1]), hdrs

    def close(self) -> None:
        self.sock.close()


def digest(name: str, pw: str, method: str, uri: str, challenge: str) -> str:
    """RFC 2069 Digest (no qop), computed here, not with the server's code."""
    m = re.match(r'Digest realm="([^"]*)", nonce="([^"]*)"', challenge)
    assert m, challenge
    realm, nonce = m.groups()
    ha1 = hashlib.md5(f"{name}:{realm}:{pw}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    return (f'Digest username="{name}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}"')


def challenged(c: Rtsp, method: str, uri: str, **kw: Any) -> str:
    status, hdrs = c.request(method, uri, **kw)
    assert status == 401, status
    challenge = hdrs["www-authenticate"]
    assert challenge.startswith(f'Digest realm="{REALM}"'), challenge
    return challenge


@pytest.mark.parametrize("user,path", PULL_CASES)
def test_rtsp_describe_pull_right(env: Env, user: str, path: str) -> None:
    uri = env.srv.rtsp_url(path)
    c = Rtsp(env.srv)
    try:
        challenge = challenged(c, "DESCRIBE", uri)
        status, hdrs = c.request("DESCRIBE", uri, {"Authorization": digest(user, password(user), "DESCRIBE",
                                                                             uri, challenge)})
        if user in CAN_PULL[path]:
            assert status == 200 and hdrs.get("content-type") == "application/sdp"
        else:
            assert status == 403
    finally:
        c.close()


def test_rtsp_describe_track_like_path_needs_its_own_right(env: Env) -> None:
    """DESCRIBE serves the whole path, a trailing `trackID=N` included: the
    pull right is for that path, not for the stream it would be a track of."""
    uri = env.srv.rtsp_url("/live/a/trackID=0")
    c = Rtsp(env.srv)
    try:
        challenge = challenged(c, "DESCRIBE", uri)
        status, _ = c.request("DESCRIBE", uri, {"Authorization": digest("u_exact", password("u_exact"),
                                                                       "DESCRIBE", uri, challenge)})
        assert status == 403
    finally:
        c.close()


def test_rtsp_describe_bad_credentials(env: Env) -> None:
    uri = env.srv.rtsp_url("/live/a")
    c = Rtsp(env.srv)
    try:
        challenge = challenged(c, "DESCRIBE", uri)
        for auth in (digest("u_star", "wrong", "DESCRIBE", uri, challenge),
                     digest("nobody", "pw", "DESCRIBE", uri, challenge),
                     digest("u_star", password("u_star"), "DESCRIBE", uri,
                            'Digest realm="ipchub", nonce="0123456789abcdef"')):
            challenge = challenged(c, "DESCRIBE", uri, headers={"Authorization": auth})
        # A fresh challenge on the same connection still works.
        status, _ = c.request("DESCRIBE", uri, {"Authorization": digest("u_star", password("u_star"),
                                                                       "DESCRIBE", uri, challenge)})
        assert status == 200
    finally:
        c.close()


SDP = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
       b"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QADayyAoP2AiAAAAMAIAAABkHihUk=,aOvDyyLA; "
       b"profile-level-id=64000D\r\na=control:streamid=0\r\n")


@pytest.mark.parametrize("user,path,expected", PUSH_CASES)
def test_rtsp_announce_push_right(env: Env, user: str, path: str, expected: int) -> None:
    uri = env.srv.rtsp_url(path)
    c = Rtsp(env.srv)
    sdp = {"Content-Type": "application/sdp"}
    try:
        challenge = challenged(c, "ANNOUNCE", uri, headers=sdp, body=SDP)
        auth = digest(user, password(user), "ANNOUNCE", uri, challenge)
        status, _ = c.request("ANNOUNCE", uri, {**sdp, "Authorization": auth}, SDP)
        assert status == expected
    finally:
        c.close()

