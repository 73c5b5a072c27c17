"""The whole process tree, started as a user would (`python -m hub`)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable

import psutil
import pytest

from tests.conftest import HubServer

SERVER_FIELDS = {"vendor", "name", "version", "os", "arch", "start_on", "duration"}


def _by_title(srv: HubServer) -> dict[str, psutil.Process]:
    out = {}
    for p in srv.children():
        try:
            title = " ".join(p.cmdline())
        except psutil.Error:  # exited meanwhile (a zombie until reaped)
            continue
        for kind in ("shard", "front"):
            if f"ipchub: {kind}-" in title:
                out[title.split("ipchub: ", 1)[1].split()[0]] = p
    return out


def _wait(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_server_info_and_runtime(hub: HubServer) -> None:
    info = hub.get_json("/api/v1/server")
    assert set(info) == SERVER_FIELDS
    assert info["name"] == "ipchub" and info["os"] == "Linux"
    assert info["start_on"].endswith("Z") and "T" in info["start_on"]
    assert info["duration"].endswith("s")
    rt = hub.get_json("/api/v1/runtime")
    assert set(rt) == {"on", "proc", "streams", "rtsp", "flv", "wsp", "rtmp", "webrtc"}
    assert set(rt["proc"]) == {"cpu", "priv", "virt", "uptime"}
    # priv/virt are summed over the supervisor and its 4 children (KiB).
    assert rt["proc"]["priv"] > 4 * 10_000
    assert rt["streams"] == {"sources": 0, "consumers": 0}
    rt1 = hub.get_json("/api/v1/runtime?extra=1")
    names = sorted(p["name"] for p in rt1["extra"]["processes"])
    assert names == ["front-0", "front-1", "shard-0", "shard-1", "supervisor"]
    for p in rt1["extra"]["processes"]:
        assert p["rss"] > 0 and p["threads"] >= 1 and len(p["gc"]["counts"]) == 3


def test_children_are_named(hub: HubServer) -> None:
    procs = _by_title(hub)
    assert sorted(procs) == ["front-0", "front-1", "shard-0", "shard-1"]
    assert "ipchub: supervisor" in " ".join(psutil.Process(hub.proc.pid).cmdline())
    # Every child names itself in its log lines (it may still be starting up).
    _wait(lambda: all(f"{name}[" in hub.log() for name in procs), 10.0, "a log line from every child")


@pytest.mark.parametrize("victim", ["shard-0", "front-1"])
def test_sigkilled_child_is_replaced_within_2s(hub: HubServer, victim: str) -> None:
    old = _by_title(hub)[victim]
    old.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    new = _wait(lambda: (p := _by_title(hub).get(victim)) and p.pid != old.pid and p, 2.0, f"new {victim}")
    # Serving again: every request answered, whichever front takes it, and
    # the runtime (which asks every child) counts the new one.
    def all_serving() -> bool:
        try:
            rt = hub.get_json("/api/v1/runtime?extra=1", timeout=0.5)
        except OSError:
            return False
        return victim in {p["name"] for p in rt["extra"]["processes"]}
    _wait(all_serving, 2.0 - (time.monotonic() - t0) + 0.5, "serving again")
    assert time.monotonic() - t0 < 2.5
    assert new.pid != old.pid
    for _ in range(10):
        hub.get_json("/api/v1/server", timeout=1.0)


def test_sigterm_leaves_no_child_and_no_segment(hub: HubServer) -> None:
    pids = [p.pid for p in hub.children()]  # the zygote too
    assert len(_by_title(hub)) == 4
    instance = str(hub.proc.pid)
    t0 = time.monotonic()
    assert hub.stop(timeout=5.0) == 0
    assert time.monotonic() - t0 < 5.0
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"hub-{instance}-")]
    assert not os.path.exists(f"/tmp/ipchub-{instance}")


def test_stale_segments_of_dead_instance_are_removed(hub_factory: Callable[..., HubServer]) -> None:
    from multiprocessing import shared_memory

    dead_pid = 999_999_9  # above pid_max on default kernels: never alive
    seg = shared_memory.SharedMemory(f"hub-{dead_pid}-7", create=True, size=4096)
    seg.close()
    try:
        srv = hub_factory("--shards", "1", "--fronts", "1")
        assert not os.path.exists(f"/dev/shm/hub-{dead_pid}-7")
        srv.stop()
    finally:
        try:
            shared_memory.SharedMemory(f"hub-{dead_pid}-7").unlink()
        except FileNotFoundError:
            pass


def test_port_in_use_is_refused(hub: HubServer, hub_factory: Callable[..., HubServer]) -> None:
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "hub", "--listen", f"127.0.0.1:{hub.port}",
                        "--data", str(hub.data)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "already in use" in r.stderr


def _steal_fd(pid: int, fd: int) -> int:
    """A copy of another process's fd (pidfd_getfd, Linux 5.6+; we are root)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pidfd_getfd = 438
    pidfd = os.pidfd_open(pid)
    try:
        new = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if new < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return int(new)
    finally:
        os.close(pidfd)


def test_malformed_ipc_frame_closes_the_link_and_the_child_is_restored(hub: HubServer) -> None:
    victim = _by_title(hub)["shard-1"]
    # Its supervisor link is the Unix socket whose peer is the supervisor
    # (SO_PEERCRED); the others are its listening socket and the fronts' links.
    import socket as _socket
    import struct

    fd = -1
    for conn in victim.net_connections(kind="unix"):
        cand = _steal_fd(victim.pid, conn.fd)
        s = _socket.socket(fileno=os.dup(cand))
        try:
            pid = struct.unpack("3i", s.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))[0]
        except OSError:
            pid = -1
        finally:
            s.close()
        if pid == hub.proc.pid and fd < 0:
            fd = cand
        else:
            os.close(cand)
    assert fd >= 0, "no supervisor link found"
    try:
        # A frame that is not msgpack: the supervisor must drop the link.
        os.write(fd, b"\x00\x00\x00\x05garbage")
    finally:
        os.close(fd)
    # Bounded waits, not a speed claim (bench/chaos.py measures recovery):
    # under the suite's parallel load a restart took over 3 s.
    _wait(lambda: (p := _by_title(hub).get("shard-1")) and p.pid != victim.pid and p, 15.0,
          "shard-1 replaced after a malformed frame")
    def counted() -> bool:
        rt = hub.get_json("/api/v1/runtime?extra=1", timeout=1.0)
        return "shard-1" in {p["name"] for p in rt["extra"]["processes"]}
    _wait(counted, 15.0, "shard-1 serving again")
    assert "closed" in hub.log()
