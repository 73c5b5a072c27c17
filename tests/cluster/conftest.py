"""A real redis-server (Debian's package) and three nodes on loopback.

Redis runs on a free loopback port in the test's own folder with AOF on and
`appendfsync always`, so a restart keeps every acknowledged write; it can be
stopped and started again on the same port and folder. Each node is a whole
server tree (`python -m hub`) with its own data folder, one shard and one
front (the machine has two cores), `--cluster`, `--node-name` and
`--advertise` its own loopback address.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from hub.cluster import keys as K
from hub.cluster.link import RedisLink
from tests.conftest import ROOT, HubServer, free_port


@dataclass
class RedisServer:
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
               "--logfile", str(self.folder / "redis.log")]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{self.log()}")

    def ping(self) -> bool:
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def command(self, *args: str) -> Any:
        """One command over a plain socket (RESP); the reply decoded."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            s.sendall(out.encode())
            f = s.makefile("rb")
            return _read_reply(f)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        p = self.folder / "redis.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""


def _read_reply(f: Any) -> Any:
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise OSError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise OSError(f"unexpected reply {line!r}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required for the cluster tests (make sysdeps installs it)")
    folder = tmp_path / "redis"
    folder.mkdir()
    srv = RedisServer(free_port(), folder).start()
    yield srv
    srv.stop()


def start_node(folder: Path, redis_url: str, name: str, *extra: str,
               env: dict[str, str] | None = None, ready: bool = True) -> HubServer:
    """A whole server tree joined to the cluster, on its own free port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data = folder / "data"
    data.mkdir(exist_ok=True)
    args = ["--shards", "1", "--fronts", "1", "--cluster", redis_url, "--node-name", name,
            "--advertise", f"127.0.0.1:{port}", *extra]
    log_path = folder / f"node-{name}.log"
    cmd = [sys.executable, "-m", "hub", "--listen", f"127.0.0.1:{port}", "--data", str(data), *args]
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("HUB_ADMIN_PASSWORD", "admin")
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
    node = HubServer(port, data, proc, log_path, args)
    if ready:
        node.wait_ready(30)
    return node


@pytest.fixture
def node_factory(tmp_path: Path, redis_server: RedisServer) -> Iterator[Callable[..., HubServer]]:
    started: list[HubServer] = []

    def make(name: str, *extra: str, env: dict[str, str] | None = None, ready: bool = True) -> HubServer:
        node = start_node(tmp_path / name, redis_server.url, name, *extra, env=env, ready=ready)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


@pytest.fixture
def three(node_factory: Callable[..., HubServer]) -> tuple[HubServer, HubServer, HubServer]:
    a = node_factory("a")
    b = node_factory("b")
    c = node_factory("c")
    return a, b, c


def kill_tree(node: HubServer) -> None:
    """kill -9 of a whole node: the supervisor and every child at once."""
    os.killpg(node.proc.pid, signal.SIGKILL)
    node.proc.wait(10)


def api(node: HubServer, method: str, path: str, body: Any = None, token: str | None = None,
        timeout: float = 10.0) -> tuple[int, Any]:
    """(status, parsed JSON body or None)."""
    if token is not None:
        path += ("&" if "?" in path else "?") + "token=" + token
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(node.base + path, method=method, data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, raw.decode(errors="replace")


def login(node: HubServer, name: str, password: str) -> tuple[int, Any]:
    return api(node, "POST", "/api/v1/login", {"username": name, "password": password})


def wait_for(what: Callable[[], Any], timeout: float, step: float = 0.05, message: str = "") -> Any:
    """Poll `what` until it returns something true; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"not within {timeout} s")
        time.sleep(step)


async def started_link(url: str, node: str = "a") -> RedisLink:
    """A node's Redis link (subscribed to its RPC channel, no resync), up."""
    async def nothing() -> None:
        pass

    link = RedisLink(url, [K.rpc_channel(node)], lambda ch, data: None, nothing)
    link.start()
    await asyncio.wait_for(link.wait_up(), 5)
    return link
