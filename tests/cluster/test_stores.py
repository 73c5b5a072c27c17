"""Users, routes and the token key shared by three nodes through Redis."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.cluster.conftest import RedisServer, api, login, wait_for
from tests.conftest import HubServer

pytestmark = pytest.mark.e2e


def test_user_on_a_logs_in_on_c_and_a_password_change_on_c_revokes_on_a(
        three: tuple[HubServer, HubServer, HubServer]) -> None:
    a, b, c = three
    token_a, token_c = a.token(), c.token()
    status, _ = api(a, "POST", "/api/v1/users", {"name": "ann", "password": "pw-1", "pull": "/live/*"},
                    token=token_a)
    created = time.monotonic()
    assert status == 200
    status, pair = wait_for(lambda: (r := login(c, "ann", "pw-1"))[0] == 200 and r, 5,
                            message="ann never logged in on c")
    took = time.monotonic() - created
    assert took < 1.0, f"a user created on a logged in on c only after {took:.2f} s"
    # ...and b's fronts know her too, within the same bound: her token from c
    # is good on b. (b hears of her on its own; it may be a little after c.)
    wait_for(lambda: api(b, "GET", "/api/v1/streams", token=pair["access_token"])[0] == 200, 5,
             message="b never accepted ann's token from c")
    took = time.monotonic() - created
    assert took < 1.0, f"a user created on a was known on b only after {took:.2f} s"

    _, pair_a = login(a, "ann", "pw-1")
    old = pair_a["access_token"]
    assert api(a, "GET", "/api/v1/streams", token=old)[0] == 200
    status, _ = api(c, "POST", "/api/v1/users?update_password=1",
                    {"name": "ann", "password": "pw-2", "pull": "/live/*"}, token=token_c)
    changed = time.monotonic()
    assert status == 200
    wait_for(lambda: api(a, "GET", "/api/v1/streams", token=old)[0] == 401, 5,
             message="a kept accepting ann's old token")
    took = time.monotonic() - changed
    assert took < 1.0, f"a refused the old token only after {took:.2f} s"
    wait_for(lambda: api(b, "GET", "/api/v1/streams", token=old)[0] == 401, 5,
             message="b kept accepting ann's old token")
    took = time.monotonic() - changed
    assert took < 1.0, f"b refused the old token only after {took:.2f} s"
    assert login(b, "ann", "pw-1")[0] == 403
    assert login(a, "ann", "pw-2")[0] == 200
    # The relay user is nobody's user: not listed, cannot log in.
    names = [u["name"] for u in api(a, "GET", "/api/v1/users?page_size=1000", token=token_a)[1]["users"]]
    assert names == sorted(names) and not any(n.startswith("%") for n in names)
    assert api(a, "GET", "/api/v1/users/%25relay", token=token_a)[0] == 404


def test_fifty_concurrent_writers_on_three_nodes_lose_nothing(
        three: tuple[HubServer, HubServer, HubServer], redis_server: RedisServer) -> None:
    nodes = list(three)
    tokens = [n.token() for n in nodes]
    results: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        node, token = nodes[i % 3], tokens[i % 3]
        s1, _ = api(node, "POST", "/api/v1/users", {"name": f"w{i:02d}", "password": f"pw{i}"}, token=token,
                    timeout=30)
        s2, _ = api(node, "POST", "/api/v1/routes", {"pattern": f"/w/{i:02d}", "url": f"rtsp://127.0.0.1:9/w{i}"},
                    token=token, timeout=30)
        with lock:
            results.append((i, s1, s2))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sorted(results) == [(i, 200, 200) for i in range(50)]
    want_users = [f"w{i:02d}" for i in range(50)]
    want_routes = [f"/w/{i:02d}" for i in range(50)]
    for node, token in zip(nodes, tokens):
        def listed(what: str, key: str, node: HubServer = node, token: str = token) -> list[str]:
            return [x[key] for x in api(node, "GET", f"/api/v1/{what}?page_size=1000", token=token)[1][what]]

        wait_for(lambda: [n for n in listed("users", "name") if n.startswith("w")] == want_users, 2,
                 message=f"users on {node.base}: {listed('users', 'name')}")
        wait_for(lambda: listed("routes", "pattern") == want_routes, 2,
                 message=f"routes on {node.base}: {listed('routes', 'pattern')}")
    stored = json.loads(redis_server.command("GET", "hub:store:users"))
    assert sorted(u["name"] for u in stored if u["name"].startswith("w")) == want_users
    assert int(redis_server.command("GET", "hub:store:routes:rev")) >= 50
    assert login(nodes[2], "w31", "pw31")[0] == 200


def _write(folder: Path, name: str, content: object) -> None:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / name).write_text(json.dumps(content))


def test_first_node_imports_its_files_and_the_admin_password(
        tmp_path: Path, node_factory: Callable[..., HubServer], redis_server: RedisServer) -> None:
    # a: the reference's users.json (plain passwords) and routetable.json.
    _write(tmp_path / "a", "users.json", [{"name": "admin", "password": "first", "admin": True},
                                          {"name": "cam", "password": "campw", "pull": "/cam/*"}])
    _write(tmp_path / "a", "routetable.json", [{"pattern": "/cam/door", "url": "rtsp://10.0.0.7/s1"}])
    # b: files of its own, which must not win over what the cluster holds.
    _write(tmp_path / "b", "users.json", [{"name": "admin", "password": "second", "admin": True}])
    _write(tmp_path / "b", "routetable.json", [{"pattern": "/other", "url": "rtsp://10.0.0.8/s"}])
    a = node_factory("a", env={"HUB_ADMIN_PASSWORD": "ignored"})
    b = node_factory("b", env={"HUB_ADMIN_PASSWORD": "ignored-too"})
    assert login(b, "admin", "first")[0] == 200
    assert login(b, "admin", "second")[0] == 403
    assert login(b, "cam", "campw")[0] == 200
    token = b.token("admin", "first")
    routes = api(b, "GET", "/api/v1/routes", token=token)[1]["routes"]
    assert routes == [{"pattern": "/cam/door", "url": "rtsp://10.0.0.7/s1"}]
    # Redis holds our format: hashes, never a plain password.
    stored = redis_server.command("GET", "hub:store:users")
    assert "campw" not in stored and "scrypt$" in stored
    assert api(a, "GET", "/api/v1/users/cam", token=a.token("admin", "first"))[0] == 200


def test_empty_redis_and_no_files_bootstraps_admin_from_the_environment(
        node_factory: Callable[..., HubServer]) -> None:
    a = node_factory("a", env={"HUB_ADMIN_PASSWORD": "boot-pw"})
    b = node_factory("b", env={"HUB_ADMIN_PASSWORD": "not-this"})
    assert login(b, "admin", "boot-pw")[0] == 200
    assert login(a, "admin", "not-this")[0] == 403
    # The same token key everywhere: a's token is good on b.
    token = a.token("admin", "boot-pw")
    assert api(b, "GET", "/api/v1/users", token=token)[0] == 200
    assert not (a.data / "users.json").exists()  # the cluster's users live in Redis
