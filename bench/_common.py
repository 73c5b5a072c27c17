"""What the benchmark programs share: ports, waits, test media, the server
tree as a black box, and measuring processes from outside.

Every program starts the real server (`python -m hub`) as a subprocess,
ends every process it started by PID, and checks that the tree left nothing
behind in /dev/shm or /tmp.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
#: Whose server the benches start: this checkout, or another one's
#: (`HUB_BENCH_ROOT=/path/to/checkout`: the same bench against older code;
#: `python -m hub` run from there imports that checkout's `hub`).
SERVER_ROOT = Path(os.environ.get("HUB_BENCH_ROOT") or ROOT).resolve()
# Servers started here take no fixed port: RTMP's own (1935 by default) only
# where a bench asks for it (`--rtmp-port`).
os.environ.setdefault("HUB_RTMP_PORT", "0")
PY = sys.executable
HOST = "127.0.0.1"
FPS = 25

Proc = subprocess.Popen[bytes] | subprocess.Popen[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> None:
    """Until `url` answers 200 with some body (a live stream's first bytes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read(13)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} not reachable")


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def make_media(folder: Path, name: str = "bench_2m.mp4", size: str = "1280x720", bitrate: str = "2M",
               fps: int = FPS, gop: int = 50, seconds: int = 20, audio_kbps: int = 64) -> Path:
    """An H.264 (no B-frames) + AAC mp4 made by ffmpeg from test sources."""
    out = folder / name
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-maxrate", bitrate,
                    "-bufsize", bitrate, "-g", str(gop), "-bf", "0", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", f"{audio_kbps}k", str(out)], check=True, timeout=300)
    return out


def push(media: Path, url: str, log: IO[bytes] | int = subprocess.DEVNULL, transport: str = "tcp") -> Proc:
    """ffmpeg pushing `media` in a loop, in real time, over RTSP."""
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re",
                             "-stream_loop", "-1", "-i", str(media), "-c", "copy", "-f", "rtsp",
                             "-rtsp_transport", transport, url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)


def stop(p: Proc, grace: float = 10.0) -> None:
    """SIGTERM this one process, SIGKILL it after `grace` seconds."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def kib(n: float) -> str:
    return f"{n / 1024:,.0f}"


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


@dataclass
class ProcMem:
    name: str
    pid: int
    uss: int
    pss: int
    rss: int
    fds: int


def title_of(p: psutil.Process) -> str:
    """`supervisor`, `shard-N`, `front-N` from the process title, else the command."""
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "?"
    if cmd.startswith("ipchub: "):
        return cmd[len("ipchub: "):].split()[0]
    return cmd[:60]


class HubTree:
    """The server under test: `python -m hub` with its own port and data
    folder, output to a log file in `work`. Its processes are found by title:
    every descendant of the supervisor counts (the zygote, and anything a
    child started, such as a resource tracker)."""

    def __init__(self, work: Path, shards: int | None = None, fronts: int | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.work = work
        self.port = free_port()
        self.shards, self.fronts = shards, fronts
        self.log_path = work / "hub.log"
        argv = [PY, "-m", "hub", "--listen", f"{HOST}:{self.port}", "--data", str(work / "data"),
                "--log-level", "warning", *extra]
        if shards is not None:
            argv += ["--shards", str(shards)]
        if fronts is not None:
            argv += ["--fronts", str(fronts)]
        self._log = open(self.log_path, "wb")
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            argv, cwd=SERVER_ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """The port answers and every expected child is up (by title)."""
        wait_port(self.port, timeout)
        want = (self.shards or 0) + (self.fronts or 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = list(self.children())
            kids = [n for n in names if n.startswith(("shard-", "front-"))]
            if len(kids) >= max(want, 2) and all(n.startswith(("shard-", "front-", "zygote")) for n in names):
                return
            time.sleep(0.2)
        raise SystemExit(f"children not up: {sorted(self.children())}")

    def children(self) -> dict[str, psutil.Process]:
        """title -> process, for every descendant of the supervisor (a second
        process of one title gets its pid after the title)."""
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return {}
        out: dict[str, psutil.Process] = {}
        for p in kids:
            name = title_of(p)
            if "resource_tracker" in name:
                name = "tracker"
            out[f"{name}:{p.pid}" if name in out else name] = p
        return out

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """The supervisor and its children, supervisor first, then by title."""
        out = [("supervisor", psutil.Process(self.pid))]
        out += sorted(self.children().items())
        return out

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.processes()]

    def memory(self) -> list[ProcMem]:
        """USS/PSS/RSS (psutil memory_full_info) and open fds per process."""
        rows = []
        for name, p in self.processes():
            try:
                m = p.memory_full_info()
                rows.append(ProcMem(name, p.pid, m.uss, m.pss, m.rss, p.num_fds()))
            except psutil.Error:
                pass
        return rows

    def shm_bytes(self, rings: bool = True, hls: bool = True) -> int:
        """Bytes the instance holds in /dev/shm (allocated blocks): the rings'
        touched pages (mapped, so in the mappers' PSS) and HLS files (not mapped)."""
        total = 0
        for e in self._shm_entries():
            if not (rings if e.name.startswith("hub-") else hls):
                continue
            for f in ([e] if e.is_file() else e.rglob("*")):
                try:
                    total += f.stat().st_blocks * 512
                except OSError:
                    pass
        return total

    def _shm_entries(self) -> list[Path]:
        shm = Path("/dev/shm")
        return [e for e in shm.iterdir() if e.name.startswith((f"hub-{self.pid}-", f"ipchub-hls-{self.pid}"))]

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> list[str]:
        """SIGTERM the supervisor (it stops its children); what it left behind,
        removed here so the machine stays clean, is returned for the report."""
        kids = [p for _, p in self.processes()[1:]]
        stop(self.proc, grace=15.0)
        for p in kids:  # a supervisor that did not stop its children: ours, by PID
            try:
                if p.is_running() and p.ppid() in (self.pid, 1):
                    p.kill()
            except psutil.Error:
                pass
        self._log.close()
        left = [str(e) for e in self._shm_entries()]
        run_dir = Path("/tmp") / f"ipchub-{self.pid}"
        if run_dir.exists():
            left.append(str(run_dir))
        for e in left:
            path = Path(e)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return left


class Procs:
    """Processes a bench started, ended by PID in reverse order."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, p: Any) -> Any:
        self.items.append(p)
        return p

    def remove(self, p: Any) -> None:
        if p in self.items:
            self.items.remove(p)

    def stop_all(self) -> list[str]:
        left: list[str] = []
        for p in reversed(self.items):
            if isinstance(p, HubTree):
                left += p.stop()
            else:
                stop(p)
        self.items.clear()
        return left


def report_leftovers(left: list[str]) -> None:
    if left:
        print(f"WARNING: the server left {len(left)} entries behind (removed now): {', '.join(left[:5])}",
              flush=True)
    else:
        print("clean: nothing left in /dev/shm or /tmp by the server", flush=True)


def machine_note() -> str:
    load = os.getloadavg()
    return (f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"(shared with other developers: figures are indicative)")
