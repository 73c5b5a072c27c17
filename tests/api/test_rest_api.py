"""Black-box tests of the REST API (API.md sections 1-4) against a running
server tree (2 shards, 2 fronts).

Expected answers are the reference's (reference/ipchub-api-transcript.md,
numbers in comments) except where API.md says "Better": JSON content type,
`{"error": ...}` bodies, 400 instead of 500 for client mistakes, 400 for
users/routes the reference let corrupt its tables, 405 for an unsupported
method on a known path, Bearer tokens, revocation on password change.

One server serves the whole module (starting one costs ~2 s); every test
uses its own user names and route patterns so the order does not matter.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import HubServer, start_server

NOT_ADMIN = "访问被拒绝，请用管理员登录"
BAD_LOGIN = "用户名或密码错误"
TOKEN_INVALID = "Token is not valid"

# Transcript A1 #8 / A7 #97, byte for byte.
CROSSDOMAIN = (b'<?xml version="1.0" ?><cross-domain-policy>\n'
               b'\t\t\t<allow-access-from domain="*" />\n'
               b'\t\t\t<allow-http-request-headers-from domain="*" headers="*"/>\n'
               b'\t\t</cross-domain-policy>')


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """A tiny HTTP client: one fresh connection per request, so requests are
    spread over the fronts as real clients' would be."""

    def __init__(self, srv: HubServer) -> None:
        self.srv = srv

    def call(self, method: str, path: str, body: bytes | str | dict[str, Any] | list[Any] | None = None,
             token: str | None = None, bearer: str | None = None,
             headers: dict[str, str] | None = None) -> Reply:
        if token is not None:
            path += ("&" if "?" in path else "?") + "token=" + quote(token)
        hdrs = dict(headers or {})
        if bearer is not None:
            hdrs["Authorization"] = f"Bearer {bearer}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def login(self, name: str, password: str) -> dict[str, str]:
        r = self.call("POST", "/api/v1/login", {"username": name, "password": password})
        assert r.status == 200, (r.status, r.body)
        pair: dict[str, str] = r.json()
        return pair

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        r = self.call(method, path, body, token=token)
        assert r.status == 200, (method, path, r.status, r.body)
        assert r.headers.get("access-control-allow-origin") == "*"
        return r


def assert_json_ok(r: Reply) -> Any:
    assert r.status == 200, (r.status, r.body)
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers.get("access-control-allow-origin") == "*"
    # Indented as the reference writes it: tab, no trailing newline.
    assert r.body.startswith(b"{\n\t\"") and r.body.endswith(b"}")
    return r.json()


def assert_error(r: Reply, status: int, message: str | None = None) -> str:
    assert r.status == status, (r.status, r.body)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str), body
    if message is not None:
        assert body["error"] == message
    return str(body["error"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    srv = start_server(tmp_path_factory.mktemp("rest"), "--shards", "2", "--fronts", "2")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server: HubServer) -> Api:
    return Api(server)


@pytest.fixture(scope="module")
def admin(api: Api) -> str:
    return api.login("admin", "admin")["access_token"]


def make_user(api: Api, admin: str, name: str, password: str = "pw", **fields: Any) -> None:
    api.ok("POST", "/api/v1/users", {"name": name, "password": password, **fields}, token=admin)


# -- 1. system ------------------------------------------------------------------

RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?\d+(\.\d+)?s$|^\d+(\.\d+)?(ms|µs|ns)$")


def test_server_info(api: Api) -> None:                                          # A1 #1
    info = assert_json_ok(api.call("GET", "/api/v1/server"))
    assert list(info) == ["vendor", "name", "version", "os", "arch", "start_on", "duration"]
    assert all(isinstance(v, str) and v for v in info.values())
    assert RFC3339_NANO.match(info["start_on"]), info["start_on"]
    assert GO_DURATION.match(info["duration"]), info["duration"]


def test_runtime(api: Api) -> None:                                              # A1 #2-#4
    for query in ("", "?extra=0"):
        rt = assert_json_ok(api.call("GET", "/api/v1/runtime" + query))
        assert list(rt) == ["on", "proc", "streams", "rtsp", "flv", "wsp", "rtmp", "webrtc"]
        assert RFC3339_NANO.match(rt["on"])
        assert set(rt["proc"]) == {"cpu", "priv", "virt", "uptime"}
        assert rt["proc"]["priv"] > 1000 and rt["proc"]["virt"] >= rt["proc"]["priv"] // 2
        assert rt["streams"] == {"sources": 0, "consumers": 0}
        for k in ("rtsp", "flv", "wsp", "rtmp", "webrtc"):
            assert set(rt[k]) == {"total", "active"}
    rt = assert_json_ok(api.call("GET", "/api/v1/runtime?extra=1"))
    assert isinstance(rt["extra"], dict)
    # Per-process figures for the whole tree: supervisor + 2 shards + 2 fronts.
    assert len(rt["extra"]["processes"]) == 5


def test_crossdomain_without_token(api: Api) -> None:                            # A1 #8, A7 #97
    for path in ("/api/crossdomain.xml", "/streams/crossdomain.xml"):
        r = api.call("GET", path)
        assert r.status == 200 and r.body == CROSSDOMAIN
        assert r.headers["content-type"] == "application/xml"


def test_path_case_and_unknown_paths(api: Api, admin: str) -> None:
    # The open-path check lower-cases, the router does not (A1 #5).
    assert_error(api.call("GET", "/api/v1/Server"), 404)
    # Token checked before routing (A3 #26, #27).
    assert_error(api.call("GET", "/api/v1/nonexistent"), 401, TOKEN_INVALID)
    assert_error(api.call("GET", "/api/v1/nonexistent", token=admin), 404)


def test_unsupported_method_is_405(api: Api, admin: str) -> None:                # A3 #28, A2 #14: Better
    assert_error(api.call("PUT", "/api/v1/users", {}, token=admin), 405)
    assert_error(api.call("DELETE", "/api/v1/users", token=admin), 405)
    assert_error(api.call("PATCH", "/api/v1/routes", {}, token=admin), 405)
    assert_error(api.call("POST", "/api/v1/streams", {}, token=admin), 405)
    assert_error(api.call("GET", "/api/v1/login"), 405)
    assert_error(api.call("POST", "/api/v1/server", {}), 405)


# -- login and tokens -------------------------------------------------------------

@pytest.mark.parametrize("body,ctype", [
    (b'{"username":"admin","password":"wrong"}', "application/json"),            # A2 #9
    (b'{"username":"nobody","password":"x"}', "application/json"),               # #10
    (b'{"username":"admin"', "application/json"),                                # #11
    (b'{}', "application/json"),                                                 # #12
    (b'username=admin&password=admin', "application/x-www-form-urlencoded"),      # #13
    (b'{"username":"admin","password":""}', "application/json"),
    (b'{"username":"","password":"admin"}', "application/json"),
    (b'["admin","admin"]', "application/json"),
    (b'{"username":1,"password":2}', "application/json"),
    (b'', "application/json"),
])
def test_login_refused(api: Api, body: bytes, ctype: str) -> None:
    r = api.call("POST", "/api/v1/login", body, headers={"Content-Type": ctype})
    assert_error(r, 403)


def test_login_refresh_rotation(api: Api) -> None:                               # A2 #15-#22
    pair = api.login("admin", "admin")
    assert set(pair) == {"access_token", "refresh_token"}
    access, refresh = pair["access_token"], pair["refresh_token"]
    assert_json_ok(api.call("GET", "/api/v1/users", token=access))
    new = assert_json_ok(api.call("GET", "/api/v1/refreshtoken", token=refresh))
    assert set(new) == {"access_token", "refresh_token"} and new["refresh_token"] != refresh
    # The old pair stops working at once.
    assert_error(api.call("GET", "/api/v1/refreshtoken", token=refresh), 401, TOKEN_INVALID)
    assert_error(api.call("GET", "/api/v1/users", token=access), 401, TOKEN_INVALID)
    # An access token is no refresh token; no token and junk are 401 too.
    assert_error(api.call("GET", "/api/v1/refreshtoken", token=new["access_token"]), 401, TOKEN_INVALID)
    assert_error(api.call("GET", "/api/v1/refreshtoken"), 401, TOKEN_INVALID)
    assert_error(api.call("GET", "/api/v1/refreshtoken", token="bogus"), 401, TOKEN_INVALID)
    # A refresh token is no access token.
    assert_error(api.call("GET", "/api/v1/users", token=new["refresh_token"]), 401, TOKEN_INVALID)
    assert_json_ok(api.call("GET", "/api/v1/users", token=new["access_token"]))
    # Two logins are two sessions: refreshing one leaves the other alone.
    other = api.login("admin", "admin")
    assert_json_ok(api.call("GET", "/api/v1/refreshtoken", token=new["refresh_token"]))
    assert_json_ok(api.call("GET", "/api/v1/users", token=other["access_token"]))


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/users/admin", "/api/v1/routes",
                                  "/api/v1/streams", "/api/v1/streams/live/x"])
def test_token_required(api: Api, path: str) -> None:                            # A3 #23, #24, #29
    assert_error(api.call("GET", path), 401, TOKEN_INVALID)
    assert_error(api.call("GET", path, token="deadbeef"), 401, TOKEN_INVALID)
    assert_error(api.call("GET", path, bearer="deadbeef"), 401, TOKEN_INVALID)
    assert_error(api.call("DELETE", path), 401, TOKEN_INVALID)


def test_bearer_token_accepted(api: Api, admin: str) -> None:                    # A3 #25: Better
    page = assert_json_ok(api.call("GET", "/api/v1/users", bearer=admin))
    assert page["users"][0]["name"] == "admin"


def test_password_change_revokes_tokens(api: Api, admin: str) -> None:
    make_user(api, admin, "revoke1", "pw1", pull="/live/*")
    pair = api.login("revoke1", "pw1")
    assert_json_ok(api.call("GET", "/api/v1/streams", token=pair["access_token"]))
    # A rights change alone keeps the user's tokens.
    api.ok("POST", "/api/v1/users", {"name": "revoke1", "pull": "*"}, token=admin)
    assert_json_ok(api.call("GET", "/api/v1/streams", token=pair["access_token"]))
    # Without update_password the password does not change (A4 #35-#37).
    api.ok("POST", "/api/v1/users", {"name": "revoke1", "password": "pw2"}, token=admin)
    assert_error(api.call("POST", "/api/v1/login", {"username": "revoke1", "password": "pw2"}), 403, BAD_LOGIN)
    assert_json_ok(api.call("GET", "/api/v1/streams", token=pair["access_token"]))
    # With it, it does, and every token of that user dies (Better).
    api.ok("POST", "/api/v1/users?update_password=1", {"name": "revoke1", "password": "pw2"}, token=admin)
    assert_error(api.call("GET", "/api/v1/streams", token=pair["access_token"]), 401, TOKEN_INVALID)
    assert_error(api.call("GET", "/api/v1/refreshtoken", token=pair["refresh_token"]), 401, TOKEN_INVALID)
    assert_error(api.call("POST", "/api/v1/login", {"username": "revoke1", "password": "pw1"}), 403, BAD_LOGIN)
    new = api.login("revoke1", "pw2")
    assert_json_ok(api.call("GET", "/api/v1/streams", token=new["access_token"]))
    # The admin's own token is untouched.
    assert_json_ok(api.call("GET", "/api/v1/users", token=admin))


def test_user_deletion_revokes_tokens(api: Api, admin: str) -> None:
    make_user(api, admin, "revoke2", "pw")
    pair = api.login("revoke2", "pw")
    api.ok("DELETE", "/api/v1/users/revoke2", token=admin)
    assert_error(api.call("GET", "/api/v1/streams", token=pair["access_token"]), 401, TOKEN_INVALID)
    assert_error(api.call("GET", "/api/v1/refreshtoken", token=pair["refresh_token"]), 401, TOKEN_INVALID)
    # Re-creating the name does not bring the old tokens back.
    make_user(api, admin, "revoke2", "pw")
    assert_error(api.call("GET", "/api/v1/streams", token=pair["access_token"]), 401, TOKEN_INVALID)


# -- 2. users ---------------------------------------------------------------------

def test_users_crud(api: Api, admin: str) -> None:                               # A4 #31-#40, #52-#54
    assert assert_json_ok(api.call("GET", "/api/v1/users/admin", token=admin)) == \
        {"name": "admin", "admin": True, "push": "*", "pull": "*"}
    assert_error(api.call("GET", "/api/v1/users/nobody", token=admin), 404)
    api.ok("POST", "/api/v1/users", {"name": "crud1", "password": "pw1", "admin": False,
                                     "push": "/live/*", "pull": "/live/single"}, token=admin)
    r = api.call("GET", "/api/v1/users/crud1", token=admin)
    assert assert_json_ok(r) == {"name": "crud1", "push": "/live/*", "pull": "/live/single"}
    assert b"password" not in r.body
    api.login("crud1", "pw1")
    api.ok("POST", "/api/v1/users?update_password=1",
           {"name": "crud1", "password": "pw2", "push": "/live/*", "pull": "/live/*"}, token=admin)
    assert assert_json_ok(api.call("GET", "/api/v1/users/crud1", token=admin))["pull"] == "/live/*"
    api.login("crud1", "pw2")
    # Names are lower-cased, in the body, the path and the login.
    api.ok("POST", "/api/v1/users", {"name": "MiXed", "password": "pw"}, token=admin)
    assert assert_json_ok(api.call("GET", "/api/v1/users/mixed", token=admin)) == {"name": "mixed"}
    assert assert_json_ok(api.call("GET", "/api/v1/users/MIXED", token=admin)) == {"name": "mixed"}
    api.login("MIXED", "pw")
    # Delete answers 200, missing or not; then the user is gone.
    r = api.ok("DELETE", "/api/v1/users/crud1", token=admin)
    assert r.body == b""
    api.ok("DELETE", "/api/v1/users/crud1", token=admin)
    api.ok("DELETE", "/api/v1/users/nobody-at-all", token=admin)
    assert_error(api.call("GET", "/api/v1/users/crud1", token=admin), 404)
    assert_error(api.call("POST", "/api/v1/login", {"username": "crud1", "password": "pw2"}), 403, BAD_LOGIN)


def test_admin_with_empty_rights_gets_everything(api: Api, admin: str) -> None:
    api.ok("POST", "/api/v1/users", {"name": "boss", "password": "pw", "admin": True}, token=admin)
    assert assert_json_ok(api.call("GET", "/api/v1/users/boss", token=admin)) == \
        {"name": "boss", "admin": True, "push": "*", "pull": "*"}
    boss = api.login("boss", "pw")["access_token"]
    assert_json_ok(api.call("GET", "/api/v1/routes", token=boss))


def test_write_then_read_on_any_front(api: Api, admin: str) -> None:
    """A change answered 200 is visible at once, whichever front the next
    request lands on (each request is a new connection)."""
    misses = []
    for i in range(60):
        api.ok("POST", "/api/v1/routes", {"pattern": f"/ryw/{i}", "url": "rtsp://h/x"}, token=admin)
        if api.call("GET", f"/api/v1/routes/ryw/{i}", token=admin).status != 200:
            misses.append(f"route {i} created but not found")
        api.ok("DELETE", f"/api/v1/routes/ryw/{i}", token=admin)
        if api.call("GET", f"/api/v1/routes/ryw/{i}", token=admin).status != 404:
            misses.append(f"route {i} deleted but still found")
    for i in range(15):
        make_user(api, admin, f"ryw{i}", "pw")
        if api.call("GET", f"/api/v1/users/ryw{i}", token=admin).status != 200:
            misses.append(f"user {i} created but not found")
    assert misses == []


@pytest.mark.parametrize("body", [
    b'{"name":"user2"',                                     # A4 #45: reference 500
    b'{"name":"","password":"x"}',                          # #46: reference 200
    b'{"name":"   ","password":"x"}',
    b'{"password":"x"}',
    b'{"name":"nopw"}',
    b'{"name":"nopw","password":""}',                       # #47: reference 200
    b'{"name":5,"password":"x"}',
    b'{"name":"bad/name","password":"x"}',
    b'{"name":"badadmin","password":"x","admin":"yes"}',
    b'{"name":"badpush","password":"x","push":7}',
    b'{"name":"badmask","password":"x","pull":"/a/*/b"}',  # `*` only as the last segment
    b'{"name":"badmask","password":"x","pull":"/live*"}',  # wildcards are whole segments
    b'["name","x"]',
    b'null',
    b'',
])
def test_user_validation(api: Api, admin: str, body: bytes) -> None:
    before = assert_json_ok(api.call("GET", "/api/v1/users?page_size=1000", token=admin))
    r = api.call("POST", "/api/v1/users", body, token=admin, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    after = assert_json_ok(api.call("GET", "/api/v1/users?page_size=1000", token=admin))
    assert after == before


def test_password_required_only_to_change_it(api: Api, admin: str) -> None:
    make_user(api, admin, "keep", "pw", push="/a")
    api.ok("POST", "/api/v1/users", {"name": "keep", "push": "/b"}, token=admin)
    assert assert_json_ok(api.call("GET", "/api/v1/users/keep", token=admin)) == {"name": "keep", "push": "/b"}
    api.login("keep", "pw")
    for body in ({"name": "keep"}, {"name": "keep", "password": ""}):
        assert_error(api.call("POST", "/api/v1/users?update_password=1", body, token=admin), 400)
    api.login("keep", "pw")


def _walk(api: Api, admin: str, collection: str, key: str, size: int,
          prefix: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page of `collection`; returns the keys with `prefix` in order and the pages."""
    pages, token = [], ""
    while True:
        r = api.call("GET", f"/api/v1/{collection}?page_size={size}&page_token={quote(token)}", token=admin)
        page = assert_json_ok(r)
        assert list(page) == ["total", "next_page_token", collection]
        pages.append(page)
        items = page[collection]
        assert len(items) <= size
        if not items:
            assert page["next_page_token"] == token     # echoed on an empty page
            break
        assert page["next_page_token"] == items[-1][key]
        token = page["next_page_token"]
        assert len(pages) < 100
    keys = [i[key] for p in pages for i in p[collection]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(p["total"] == len(keys) for p in pages)
    return [k for k in keys if k.startswith(prefix)], pages


def test_users_paging(api: Api, admin: str) -> None:                             # A4 #49-#51
    names = [f"pg{i:02d}" for i in range(22)]
    for n in reversed(names):
        make_user(api, admin, n, "pw")
    for size in (1, 3, 7):
        got, _ = _walk(api, admin, "users", "name", size, "pg")
        assert got == names
    first = assert_json_ok(api.call("GET", "/api/v1/users", token=admin))
    assert len(first["users"]) == 20 and first["total"] >= 23                    # default page size
    page = assert_json_ok(api.call("GET", "/api/v1/users?page_size=2&page_token=pg05", token=admin))
    assert [u["name"] for u in page["users"]] == ["pg06", "pg07"] and page["next_page_token"] == "pg07"
    page = assert_json_ok(api.call("GET", "/api/v1/users?page_token=zzzz", token=admin))
    assert page["users"] == [] and page["next_page_token"] == "zzzz"
    for bad in ("abc", "1.5", "%20"):
        assert_error(api.call("GET", f"/api/v1/users?page_size={bad}", token=admin), 400)
    for n in names:
        api.ok("DELETE", f"/api/v1/users/{n}", token=admin)


# -- 3. routes --------------------------------------------------------------------

def test_routes_crud(api: Api, admin: str) -> None:                              # A5 #57-#76
    hr = {"pattern": "/crud/hr/", "url": "rtsp://admin:admin@127.0.0.1:2554/video", "keepalive": False}
    api.ok("POST", "/api/v1/routes", hr, token=admin)
    api.ok("POST", "/api/v1/routes", {"pattern": "/crud/entrance/A1", "url": "rtsp://127.0.0.1:2554/live2",
                                      "keepalive": True}, token=admin)
    assert assert_json_ok(api.call("GET", "/api/v1/routes/crud/entrance/a1", token=admin)) == \
        {"pattern": "/crud/entrance/a1", "url": "rtsp://127.0.0.1:2554/live2", "keepalive": True}
    api.ok("POST", "/api/v1/routes", {"pattern": "/crud/entrance/A1", "url": "rtsp://127.0.0.1:2554/live3",
                                      "keepalive": False}, token=admin)
    # Found by any case, keepalive left out when false (#63).
    assert assert_json_ok(api.call("GET", "/api/v1/routes/crud/entrance/A1", token=admin)) == \
        {"pattern": "/crud/entrance/a1", "url": "rtsp://127.0.0.1:2554/live3"}
    # A directory route is found with its trailing slash only (#64, #65).
    assert assert_json_ok(api.call("GET", "/api/v1/routes/crud/hr/", token=admin)) == \
        {"pattern": "/crud/hr/", "url": "rtsp://admin:admin@127.0.0.1:2554/video"}
    assert_error(api.call("GET", "/api/v1/routes/crud/hr", token=admin), 404)
    assert_error(api.call("GET", "/api/v1/routes/nope", token=admin), 404)       # #59
    # Delete: 200, also when missing (#72-#74).
    assert api.ok("DELETE", "/api/v1/routes/crud/entrance/A1", token=admin).body == b""
    api.ok("DELETE", "/api/v1/routes/crud/entrance/A1", token=admin)
    assert_error(api.call("GET", "/api/v1/routes/crud/entrance/a1", token=admin), 404)
    api.ok("DELETE", "/api/v1/routes/crud/hr/", token=admin)
    assert_error(api.call("GET", "/api/v1/routes/crud/hr/", token=admin), 404)


@pytest.mark.parametrize("body", [
    b'{"pattern":"/v/x","url":"http://example/x"}',           # A5 #66: reference 200
    b'{"pattern":"","url":"rtsp://127.0.0.1/x"}',             # #67: reference made a catch-all
    b'{"pattern":"  ","url":"rtsp://127.0.0.1/x"}',
    b'{"url":"rtsp://127.0.0.1/x"}',
    b'{"pattern":"/v/y","url":""}',                           # #68
    b'{"pattern":"/v/y"}',
    b'{"pattern":"/v/y","url":"rtsp://"}',
    b'{"pattern":"/v/y","url":"rtsp://h:notaport/x"}',
    b'{"pattern":"/v/y","url":"rtsp://h/x","keepalive":"yes"}',
    b'{"pattern":"/v/y",',                                   # #69: reference 500
    b'[{"pattern":"/v/y","url":"rtsp://h/x"}]',
    b'',
])
def test_route_validation(api: Api, admin: str, body: bytes) -> None:
    before = assert_json_ok(api.call("GET", "/api/v1/routes?page_size=1000", token=admin))
    r = api.call("POST", "/api/v1/routes", body, token=admin, headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert assert_json_ok(api.call("GET", "/api/v1/routes?page_size=1000", token=admin)) == before


def test_routes_paging(api: Api, admin: str) -> None:                            # A5 #70, #71
    patterns = [f"/pg/r{i:02d}" for i in range(9)] + ["/pg/s/"]
    for p in reversed(patterns):
        api.ok("POST", "/api/v1/routes", {"pattern": p.upper(), "url": f"rtsp://127.0.0.1:2554{p}"}, token=admin)
    for size in (1, 4):
        got, _ = _walk(api, admin, "routes", "pattern", size, "/pg/")
        assert got == patterns
    page = assert_json_ok(api.call("GET", "/api/v1/routes?page_size=2&page_token=/pg/r07", token=admin))
    assert [r["pattern"] for r in page["routes"]] == ["/pg/r08", "/pg/s/"]
    assert_error(api.call("GET", "/api/v1/routes?page_size=abc", token=admin), 400)
    for p in patterns:
        api.ok("DELETE", f"/api/v1/routes{p}", token=admin)
    got, _ = _walk(api, admin, "routes", "pattern", 5, "/pg/")
    assert got == []


# -- 4. streams (without media; the live ones are in tests/e2e/test_streams_api.py)

def test_streams_when_none_live(api: Api, admin: str) -> None:                   # A6 #81, #84, #85, #88
    page = assert_json_ok(api.call("GET", "/api/v1/streams?c=1", token=admin))
    assert page == {"total": 0, "next_page_token": "", "streams": []}
    assert_error(api.call("GET", "/api/v1/streams?page_size=abc", token=admin), 400)
    assert_error(api.call("GET", "/api/v1/streams/live/nonexist", token=admin), 404)
    assert api.ok("DELETE", "/api/v1/streams/live/nonexist", token=admin).body == b""
    assert_error(api.call("DELETE", "/api/v1/streams/live/test:consumer", token=admin), 400)
    assert_error(api.call("DELETE", "/api/v1/streams/live/test:consumer?cid=", token=admin), 400)
    assert_error(api.call("DELETE", "/api/v1/streams/live/test:consumer?cid=abc", token=admin), 400)
    api.ok("DELETE", "/api/v1/streams/live/test:consumer?cid=999999", token=admin)


# -- non-admin users ------------------------------------------------------------------

def test_non_admin_limits(api: Api, admin: str) -> None:                         # A4 #41-#44
    make_user(api, admin, "plain", "pw", push="/live/*", pull="/live/single")
    tok = api.login("plain", "pw")["access_token"]
    forbidden = [("GET", "/api/v1/users", None), ("GET", "/api/v1/users/plain", None),
                 ("POST", "/api/v1/users", {"name": "plain", "password": "x", "admin": True}),
                 ("DELETE", "/api/v1/users/admin", None), ("GET", "/api/v1/routes", None),
                 ("POST", "/api/v1/routes", {"pattern": "/a", "url": "rtsp://h/a"}),
                 ("GET", "/api/v1/routes/a", None), ("DELETE", "/api/v1/routes/a", None),
                 ("DELETE", "/api/v1/streams/live/nonexist", None),
                 ("DELETE", "/api/v1/streams/live/x:consumer?cid=1", None)]
    for method, path, body in forbidden:
        assert_error(api.call(method, path, body, token=tok), 403, NOT_ADMIN)
    # Nothing changed behind the refusals.
    assert assert_json_ok(api.call("GET", "/api/v1/users/plain", token=admin)) == \
        {"name": "plain", "push": "/live/*", "pull": "/live/single"}
    assert_json_ok(api.call("GET", "/api/v1/users/admin", token=admin))
    # Reading streams is open to any logged-in user (#42).
    assert assert_json_ok(api.call("GET", "/api/v1/streams", token=tok))["total"] == 0
    assert_error(api.call("GET", "/api/v1/streams/live/x", token=tok), 404)
    assert_json_ok(api.call("GET", "/api/v1/streams", bearer=tok))


# -- OpenAPI ------------------------------------------------------------------------

API_PATHS = {
    "/api/v1/server": {"get"}, "/api/v1/runtime": {"get"}, "/api/v1/login": {"post"},
    "/api/v1/refreshtoken": {"get"}, "/api/v1/users": {"get", "post"},
    "/api/v1/users/{name}": {"get", "delete"}, "/api/v1/routes": {"get", "post"},
    "/api/v1/routes/{pattern}": {"get", "delete"}, "/api/v1/streams": {"get"},
    "/api/v1/streams/{path}": {"get", "delete"}, "/api/v1/streams/{path}:consumer": {"delete"},
}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_openapi_document(api: Api) -> None:
    doc = assert_json_ok(api.call("GET", "/api/v1/openapi.json"))
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    paths = doc["paths"]
    for path, methods in API_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
        for m in methods:
            assert "200" in paths[path][m]["responses"], (path, m)
    for ref in set(_refs(doc)):
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]
        assert isinstance(node, dict)
    # Every path parameter of a templated path is declared.
    for path, ops in paths.items():
        for name in re.findall(r"{(\w+)}", path):
            for m, op in ops.items():
                declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
                assert name in declared, (path, m, name)


def test_trailing_slash_collection_is_404(api: Api, admin: str) -> None:         # A8 #3, #8
    """The reference answers 404 for `/api/v1/users/` (an empty name); a
    redirect to the collection would turn a DELETE into a 405 on another path."""
    assert_error(api.call("GET", "/api/v1/users/", token=admin), 404)
    r = api.call("DELETE", "/api/v1/users/", token=admin)
    assert r.status in (200, 404), (r.status, r.headers)


def test_server_duration_advances(api: Api) -> None:
    a = assert_json_ok(api.call("GET", "/api/v1/server"))
    time.sleep(0.05)
    b = assert_json_ok(api.call("GET", "/api/v1/server"))
    assert a["start_on"] == b["start_on"] and a["duration"] != b["duration"]


# -- fuzz: any body is a 200 or a 400, never a server error ------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.sampled_from(["*", "/a/*", "/a/+/b", "rtsp://h/x", "/x/", ";", "http://h"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["users", "routes"]),
       body=st.dictionaries(st.sampled_from(["name", "password", "admin", "push", "pull",
                                             "pattern", "url", "keepalive"]), JSON_VALUES, max_size=5)
       | JSON_VALUES)
def test_any_body_is_200_or_400(api: Api, admin: str, kind: str, body: Any) -> None:
    # The module's admin must stay an admin.
    assume(not (isinstance(body, dict) and str(body.get("name", "")).strip().lower() == "admin"))
    r = api.call("POST", f"/api/v1/{kind}", json.dumps(body), token=admin,
                 headers={"Content-Type": "application/json"})
    if r.status != 200:
        assert_error(r, 400)
    assert_json_ok(api.call("GET", f"/api/v1/{kind}?page_size=1000", token=admin))
