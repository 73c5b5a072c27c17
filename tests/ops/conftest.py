"""Fixtures for the operations tests: test media and ffmpeg pushers (as the
end-to-end tests make them), a real Prometheus, and waits on the tree."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import HubServer, free_port
from tests.e2e.conftest import media, media_dir  # noqa: F401  (fixtures)
from tests.e2e.tools import Pusher
from tests.ops.clients import HOST, Prometheus


def stream_live(srv: HubServer, path: str) -> bool:
    """Asked of the REST API, so no player session is made to find out."""
    try:
        srv.get_json(f"/api/v1/streams{path}", timeout=2.0)
        return True
    except (urllib.error.URLError, OSError):
        return False


def ready(srv: HubServer) -> bool:
    try:
        with urllib.request.urlopen(f"{srv.base}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def child_named(srv: HubServer, name: str) -> Any:
    """The psutil process of `shard-N` / `front-N` (by its process title)."""
    kind, _, index = name.partition("-")
    module = {"shard": "hub.shard", "front": "hub.api"}[kind]
    for p in srv.children():
        cmd = p.cmdline()
        if any(part.endswith(name) for part in cmd):
            return p
        if module in cmd and "--index" in cmd and cmd[cmd.index("--index") + 1] == index:
            return p
    raise AssertionError(f"no {name} among {[p.cmdline() for p in srv.children()]}")


def wait_until(cond: Callable[[], bool], timeout: float, what: str, srv: HubServer | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s" + (f"\n{srv.log()[-3000:]}" if srv else ""))


@pytest.fixture
def push(media: Callable[[str], Path]) -> Iterator[Callable[..., Pusher]]:  # noqa: F811
    """ffmpeg pushing test media to `srv` (through `port` if given, e.g. a proxy)."""
    started: list[Pusher] = []

    def start(srv: HubServer, path: str, port: int | None = None, variant: str = "h264",
              url_user: str = "") -> Pusher:
        cred = f"{url_user}@" if url_user else ""
        url = f"rtsp://{cred}{HOST}:{port or srv.port}/{path.lstrip('/')}"
        p = Pusher(url, media(variant), "tcp").start()
        started.append(p)
        wait_until(lambda: stream_live(srv, path), 15, f"{path} live", srv)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Start Debian's prometheus scraping `target_port`'s /metrics every second."""
    started: list[Prometheus] = []

    def start(target_port: int, token: str | None = None) -> Prometheus:
        binary = shutil.which("prometheus")
        assert binary, "prometheus missing: `make sysdeps` installs Debian's prometheus"
        folder = tmp_path / f"prometheus-{len(started)}"
        folder.mkdir()
        job: dict[str, object] = {"job_name": "ipchub", "scrape_interval": "1s", "scrape_timeout": "1s",
                                  "static_configs": [{"targets": [f"{HOST}:{target_port}"]}]}
        if token:
            job["authorization"] = {"type": "Bearer", "credentials": token}
        (folder / "prometheus.yml").write_text(yaml.safe_dump(
            {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}))
        port = free_port()
        log = open(folder / "prometheus.log", "wb")
        proc = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address={HOST}:{port}",
                                 "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        prom = Prometheus(port, proc, folder)
        started.append(prom)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"prometheus not ready:\n{prom.log.read_text()[-2000:]}")
        wait_until(prom.targets_up, 15, "prometheus scraping the tree")
        return prom

    yield start
    for prom in started:
        prom.proc.terminate()
        try:
            prom.proc.wait(10)
        except subprocess.TimeoutExpired:
            prom.proc.kill()
            prom.proc.wait()
