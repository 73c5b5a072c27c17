"""Defect 10: user names a URL path segment cannot carry, and locking the
operator out by accident.

`.` and `..` were accepted and then could never be read or deleted through
`/api/v1/users/{name}` (clients remove dot segments before sending). Names
are trimmed and lower-cased and POST is an upsert, as the reference does, so
`ADMIN` or `admin ` updates `admin`; that stays, but no request may take the
admin right from the last admin or delete the last admin.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import HubServer

pytestmark = pytest.mark.e2e


def call(srv: HubServer, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def names(srv: HubServer, token: str) -> list[str]:
    status, body = call(srv, "GET", "/api/v1/users?page_size=100", token)
    assert status == 200
    return [u["name"] for u in body["users"]]


REFUSED = [".", "..", " . ", "..\t", " .. ", "a/b", "a?b", "a#b", "a%2fb", "/", "a\\b", "a b", "a:b"]


def test_names_a_path_segment_cannot_carry_are_refused(hub: HubServer) -> None:
    token = hub.token()
    before = names(hub, token)
    for name in REFUSED:
        status, body = call(hub, "POST", "/api/v1/users", token, {"name": name, "password": "pw"})
        assert status == 400, (name, status, body)
        assert body and body.get("error"), "a refusal says why"
    assert names(hub, token) == before, "a refused request changes nothing"


def test_dotted_names_that_are_not_dot_segments_round_trip(hub: HubServer) -> None:
    """`...` and `a.b` are ordinary segments: created, read and deleted by URL."""
    token = hub.token()
    for name in ("...", "a.b", ".hidden"):
        assert call(hub, "POST", "/api/v1/users", token, {"name": name, "password": "pw"})[0] == 200
        status, body = call(hub, "GET", f"/api/v1/users/{quote(name, safe='')}", token)
        assert (status, body) == (200, {"name": name})
        assert call(hub, "DELETE", f"/api/v1/users/{quote(name, safe='')}", token)[0] == 200
        assert name not in names(hub, token)


def test_case_and_spaces_still_upsert_admin(hub: HubServer) -> None:
    token = hub.token()
    status, _ = call(hub, "POST", "/api/v1/users", token, {"name": "ADMIN", "admin": True, "pull": "/live/*"})
    assert status == 200
    assert call(hub, "GET", "/api/v1/users/admin", token) == (
        200, {"name": "admin", "admin": True, "push": "*", "pull": "/live/*"})
    status, _ = call(hub, "POST", "/api/v1/users?update_password=1", token,
                     {"name": "admin ", "admin": True, "password": "changed"})
    assert status == 200
    status, pair = call(hub, "POST", "/api/v1/login", "", {"username": "admin", "password": "changed"})
    assert status == 200, "the password of `admin` changed"
    assert names(hub, pair["access_token"]) == ["admin"]


def test_the_last_admin_cannot_be_demoted_or_deleted(hub: HubServer) -> None:
    token = hub.token()
    for method, path, body in (("POST", "/api/v1/users", {"name": "admin", "admin": False}),
                               ("POST", "/api/v1/users", {"name": "Admin ", "push": "*", "pull": "*"}),
                               ("DELETE", "/api/v1/users/admin", None),
                               ("DELETE", "/api/v1/users/ADMIN%20", None)):
        status, answer = call(hub, method, path, token, body)
        assert status == 400, (method, path, status, answer)
        assert "last admin" in answer["error"], answer
        assert call(hub, "GET", "/api/v1/users/admin", token) == (
            200, {"name": "admin", "admin": True, "push": "*", "pull": "*"}), "a refusal changes nothing"

    # With a second admin, either may go; then the other is the last one.
    assert call(hub, "POST", "/api/v1/users", token, {"name": "root", "password": "pw", "admin": True})[0] == 200
    assert call(hub, "POST", "/api/v1/users", token, {"name": "admin", "admin": False})[0] == 200
    root = hub.token("root", "pw")
    assert call(hub, "DELETE", "/api/v1/users/root", root)[0] == 400
    assert call(hub, "POST", "/api/v1/users", root, {"name": "root", "admin": False})[0] == 400
    assert call(hub, "POST", "/api/v1/users", root, {"name": "admin", "admin": True})[0] == 200
    assert call(hub, "DELETE", "/api/v1/users/root", token)[0] == 200
    assert names(hub, token) == ["admin"]
    # Deleting a user that is not there still answers 200 (the reference's).
    assert call(hub, "DELETE", "/api/v1/users/nobody", token)[0] == 200
