"""Shared fixtures: a real server process tree on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Test servers take no fixed port: RTMP's own (1935 by default) only where a
# test asks for it (`--rtmp-port`); the shared port serves RTMP anyway.
os.environ.setdefault("HUB_RTMP_PORT", "0")
OPEN_API_PATHS = {"/api/v1/server", "/api/v1/runtime", "/api/v1/openapi.json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubServer:
    port: int
    data: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rtsp_url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def token(self, user: str = "admin", password: str = "admin") -> str:
        """An access token (logged in once per server and user)."""
        cache = self.__dict__.setdefault("_tokens", {})
        if user not in cache:
            req = urllib.request.Request(self.base + "/api/v1/login", method="POST",
                                         data=json.dumps({"username": user, "password": password}).encode())
            with urllib.request.urlopen(req, timeout=10) as r:
                cache[user] = json.loads(r.read())["access_token"]
        return str(cache[user])

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        """GET a JSON answer; paths that need a token get the admin's."""
        if path.split("?", 1)[0] not in OPEN_API_PATHS:
            path += ("&" if "?" in path else "?") + "token=" + self.token()
        with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
            return json.loads(r.read())

    def post_json(self, path: str, obj: Any, timeout: float = 10.0) -> int:
        """POST `obj` as JSON with the admin's token; the answer's status."""
        req = urllib.request.Request(f"{self.base}{path}?token={self.token()}", method="POST",
                                     data=json.dumps(obj).encode())
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[Any]:
        import psutil

        return psutil.Process(self.proc.pid).children(recursive=True)

    def expected_processes(self) -> int:
        def count(flag: str) -> int:
            if flag in self.extra_args:
                return int(self.extra_args[self.extra_args.index(flag) + 1])
            from hub.config import default_processes

            return default_processes()
        return 1 + count("--shards") + count("--fronts")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every child answers (runtime?extra=1 lists them all)."""
        deadline = time.monotonic() + timeout
        want = self.expected_processes()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                rt = self.get_json("/api/v1/runtime?extra=1", timeout=1.0)
                if len(rt["extra"]["processes"]) >= want:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


#: A port free_port() found can be taken before the server binds it (by
#: another test's outgoing connection, whose source port comes from the
#: same ephemeral range): the server exits saying so, and is started again.
PORT_TAKEN = "is already in use"
PORT_TRIES = 3


def start_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 ready: bool = True, listen_host: str = "127.0.0.1") -> HubServer:
    """`listen_host` "[::]": IPv6 and IPv4 (the tests' URLs stay 127.0.0.1)."""
    for attempt in range(PORT_TRIES):
        srv = _start_once(tmp_path, *args, env=env, listen_host=listen_host)
        if not ready:
            return srv
        try:
            srv.wait_ready()
            return srv
        except RuntimeError:
            if srv.proc.poll() is None or PORT_TAKEN not in srv.log() or attempt == PORT_TRIES - 1:
                srv.stop()
                raise
    raise AssertionError("unreachable")


def _start_once(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                listen_host: str = "127.0.0.1") -> HubServer:
    port = free_port()
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    log_path = tmp_path / f"server-{port}.log"
    cmd = [sys.executable, "-m", "hub", "--listen", f"{listen_host}:{port}", "--data", str(data), *args]
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("HUB_ADMIN_PASSWORD", "admin")
    logf = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=full_env)
    logf.close()
    return HubServer(port, data, proc, log_path, list(args))


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[Callable[..., HubServer]]:
    started: list[HubServer] = []

    def make(*args: str, env: dict[str, str] | None = None, ready: bool = True,
             listen_host: str = "127.0.0.1") -> HubServer:
        srv = start_server(tmp_path, *args, env=env, ready=ready, listen_host=listen_host)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def hub(hub_factory: Callable[..., HubServer]) -> HubServer:
    return hub_factory("--shards", "2", "--fronts", "2")
