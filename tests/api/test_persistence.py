"""What the REST API writes survives: concurrent writers, a SIGKILL of the
whole process tree, and the reference's own users.json/routetable.json."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil  # type: ignore[import-untyped]

from tests.conftest import HubServer, start_server


def call(srv: HubServer, method: str, path: str, body: Any = None,
         token: str | None = None) -> tuple[int, Any]:
    if token is not None:
        path += ("&" if "?" in path else "?") + "token=" + token
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


def login(srv: HubServer, name: str, password: str) -> str:
    status, body = call(srv, "POST", "/api/v1/login", {"username": name, "password": password})
    assert status == 200, (status, body)
    return str(body["access_token"])


def listed(srv: HubServer, token: str, collection: str, key: str) -> list[str]:
    status, page = call(srv, "GET", f"/api/v1/{collection}?page_size=1000", token=token)
    assert status == 200
    return [item[key] for item in page[collection]]


def test_fifty_concurrent_writers(hub: HubServer) -> None:
    token = login(hub, "admin", "admin")
    results: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        s1, _ = call(hub, "POST", "/api/v1/users", {"name": f"w{i:02d}", "password": f"pw{i}",
                                                    "pull": f"/w/{i}"}, token=token)
        s2, _ = call(hub, "POST", "/api/v1/routes", {"pattern": f"/w/{i:02d}",
                                                     "url": f"rtsp://127.0.0.1:2554/w{i}"}, token=token)
        with lock:
            results.append((f"{i:02d}", s1, s2))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [(f"{i:02d}", 200, 200) for i in range(50)]

    want_users = [f"w{i:02d}" for i in range(50)]
    want_routes = [f"/w/{i:02d}" for i in range(50)]
    assert [n for n in listed(hub, token, "users", "name") if n.startswith("w")] == want_users
    assert listed(hub, token, "routes", "pattern") == want_routes
    users = json.loads((hub.data / "users.json").read_text())
    assert sorted(u["name"] for u in users if u["name"].startswith("w")) == want_users
    routes = json.loads((hub.data / "routetable.json").read_text())
    assert sorted(r["pattern"] for r in routes) == want_routes
    assert {r["pattern"]: r["url"] for r in routes}["/w/07"] == "rtsp://127.0.0.1:2554/w7"
    # Every one of them can log in with its own password.
    login(hub, "w31", "pw31")


def _kill_tree(srv: HubServer) -> None:
    """SIGKILL the supervisor and every child at once: nothing gets to flush."""
    children = psutil.Process(srv.proc.pid).children(recursive=True)
    assert len(children) >= 4
    for p in [psutil.Process(srv.proc.pid), *children]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    srv.proc.wait(10)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive


def test_answered_change_survives_sigkill(hub: HubServer, tmp_path: Path) -> None:
    token = login(hub, "admin", "admin")
    assert call(hub, "POST", "/api/v1/users", {"name": "survivor", "password": "s3cret-pw-1",
                                               "push": "/cam/+", "pull": "/cam/*"}, token=token)[0] == 200
    assert call(hub, "POST", "/api/v1/routes", {"pattern": "/keep/", "url": "rtsp://10.0.0.1/live",
                                                "keepalive": True}, token=token)[0] == 200
    assert call(hub, "DELETE", "/api/v1/users/survivor-not", token=token)[0] == 200
    # The last change before the kill: a password change.
    assert call(hub, "POST", "/api/v1/users?update_password=1",
                {"name": "survivor", "password": "s3cret-pw-2", "push": "/cam/+", "pull": "/cam/*"},
                token=token)[0] == 200
    _kill_tree(hub)

    again = start_server(tmp_path, "--shards", "2", "--fronts", "2")
    try:
        token = login(again, "admin", "admin")
        assert call(again, "GET", "/api/v1/users/survivor", token=token) == \
            (200, {"name": "survivor", "push": "/cam/+", "pull": "/cam/*"})
        assert call(again, "GET", "/api/v1/routes/keep/", token=token) == \
            (200, {"pattern": "/keep/", "url": "rtsp://10.0.0.1/live", "keepalive": True})
        login(again, "survivor", "s3cret-pw-2")
        assert call(again, "POST", "/api/v1/login",
                    {"username": "survivor", "password": "s3cret-pw-1"})[0] == 403
    finally:
        again.stop()


def test_users_file_holds_no_plain_password(hub: HubServer) -> None:
    token = login(hub, "admin", "admin")
    secret = "Plain-Text-Never-9"
    assert call(hub, "POST", "/api/v1/users", {"name": "hidden", "password": secret}, token=token)[0] == 200
    path = hub.data / "users.json"
    raw = path.read_bytes()
    assert b'"hidden"' in raw
    assert secret.encode() not in raw
    assert hashlib.md5(secret.encode()).hexdigest().encode() not in raw
    assert b'"admin", "password"' not in raw and b'"password":' not in raw.replace(b" ", b"")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


REFERENCE_USERS = [
    {"name": "admin", "password": "admin", "admin": True, "push": "*", "pull": "*"},
    {"name": "User1", "password": "pw2", "push": "/live/*", "pull": "/live/single"},
    # The reference's MD5 mode: md5sum of the password.
    {"name": "md5user", "password": hashlib.md5(b"pw3").hexdigest(), "pull": "/x"},
]
REFERENCE_ROUTES = [
    {"pattern": "/upstream/cam1", "url": "rtsp://127.0.0.1:2554/live/up"},
    {"pattern": "/hr/", "url": "rtsp://admin:admin@127.0.0.1:2554/video", "keepalive": False},
    {"pattern": "/Entrance/A1", "url": "rtsp://127.0.0.1:2554/live3", "keepalive": True},
]


def test_reference_files_load(hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # The reference writes tab-indented JSON.
    (data / "users.json").write_text(json.dumps(REFERENCE_USERS, indent="\t"))
    (data / "routetable.json").write_text(json.dumps(REFERENCE_ROUTES, indent="\t"))
    srv = hub_factory("--shards", "2", "--fronts", "2", env={"HUB_ADMIN_PASSWORD": "not-used"})
    token = login(srv, "admin", "admin")
    assert call(srv, "GET", "/api/v1/users", token=token) == (200, {
        "total": 3, "next_page_token": "user1", "users": [
            {"name": "admin", "admin": True, "push": "*", "pull": "*"},
            {"name": "md5user", "pull": "/x"},
            {"name": "user1", "push": "/live/*", "pull": "/live/single"}]})
    login(srv, "user1", "pw2")
    login(srv, "md5user", "pw3")
    assert call(srv, "POST", "/api/v1/login", {"username": "user1", "password": "pw1"})[0] == 403
    assert call(srv, "GET", "/api/v1/routes", token=token) == (200, {
        "total": 3, "next_page_token": "/upstream/cam1", "routes": [
            {"pattern": "/entrance/a1", "url": "rtsp://127.0.0.1:2554/live3", "keepalive": True},
            {"pattern": "/hr/", "url": "rtsp://admin:admin@127.0.0.1:2554/video"},
            {"pattern": "/upstream/cam1", "url": "rtsp://127.0.0.1:2554/live/up"}]})
    # Once loaded, the plain passwords are gone from the file.
    deadline = time.monotonic() + 5
    while b'"pw2"' in (data / "users.json").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.1)
    raw = (data / "users.json").read_bytes()
    assert b'"pw2"' not in raw and b'"admin", "password": "admin"' not in raw
