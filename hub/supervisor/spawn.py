"""Starting children: forked by the zygote, or a fresh interpreter each.

`ChildProcess` is a child watched through its pidfd: its exit wakes the
loop at once (no polling, no SIGCHLD handler), `os.waitid(P_PIDFD)` reaps
it and gives its status, and signals go through the pidfd, so a recycled
pid is never signalled. The zygote's children are re-parented to the
supervisor (a child subreaper, see `hub.zygote`), so they are ours to reap
like any child.

`Spawner` asks the zygote for each child; a zygote that died or stopped
answering is replaced by a fresh `python -m hub.zygote`. Without a zygote
(`HUB_ZYGOTE=0`, no pidfds) each child is `python -m hub.shard|hub.api`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
import sys
from typing import Any, Protocol

from ..child import child_argv, child_env
from ..config import Config
from ..errors import HubError

log = logging.getLogger("hub.supervisor")

#: How long the zygote may take to answer a spawn request (its first
#: answer waits for its imports, which take seconds on a loaded machine).
SPAWN_TIMEOUT = 30.0
#: A child whose exit the pidfd showed but which is not ours to reap yet
#: (its middle process is still exiting) is looked at again this often...
REAP_RETRY = 0.005
#: ... for at most this long; then its status is unknown (-1).
REAP_GIVE_UP = 2.0

_forked: tuple[int, socket.socket] | None = None


def use_forked_zygote(pid: int, sock: socket.socket) -> None:
    """The zygote `python -m hub` forked before the loop (hub.zygote.fork_zygote)."""
    global _forked
    _forked = (pid, sock)


class Process(Protocol):
    """What the tree needs of a child process (asyncio's Process has it too)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...

    def send_signal(self, sig: int) -> None: ...


class ChildProcess:
    """A child process watched through its pidfd (Linux 5.4+)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._given_up = self._loop.time() + REAP_GIVE_UP
        self._loop.add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._pidfd)
        try:
            res = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            # Not re-parented to us yet: its middle process is exiting.
            if self._loop.time() < self._given_up:
                self._loop.call_later(REAP_RETRY, self._on_exit)
            else:
                self._done(-1)
            return
        if res is None:  # woken without an exit (cannot happen for a pidfd, but cheap)
            self._loop.add_reader(self._pidfd, self._on_exit)
            return
        self._done(res.si_status if res.si_code == os.CLD_EXITED else -res.si_status)

    def _done(self, code: int) -> None:
        self.returncode = code
        os.close(self._pidfd)
        self._pidfd = -1
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self._pidfd < 0:
            return
        try:
            signal.pidfd_send_signal(self._pidfd, sig)
        except ProcessLookupError:  # exited, not reaped yet
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """The supervisor's side of one zygote: spawn requests, one at a time."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.proc = ChildProcess(pid)
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @classmethod
    def exec(cls) -> Zygote:
        """A fresh `python -m hub.zygote` (posix_spawn: safe beside a running loop)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            os.set_inheritable(theirs.fileno(), True)
            argv = [sys.executable, "-m", "hub.zygote", "--fd", str(theirs.fileno()), "--parent", str(os.getpid())]
            pid = os.posix_spawn(sys.executable, argv, dict(os.environ))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        log.info("started a zygote, pid %d", pid)
        return cls(pid, ours)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def spawn(self, kind: str, index: int, ipc_fd: int, instance: str, run_dir: str,
                    config: Config) -> int:
        """The pid of a new child; HubError if the zygote cannot make it."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            rid = next(self._ids)
            msg = json.dumps({"id": rid, "kind": kind, "index": index, "instance": instance, "run_dir": run_dir,
                              "config": config.to_dict(), "parent": os.getpid()}).encode()
            try:
                # A few KiB into an empty socket buffer: never blocks.
                socket.send_fds(self.sock, [msg], [ipc_fd])
                async with asyncio.timeout(SPAWN_TIMEOUT):
                    while True:
                        data = await loop.sock_recv(self.sock, 65536)
                        if not data:
                            raise HubError("the zygote exited")
                        reply: dict[str, Any] = json.loads(data)
                        if reply.get("id") == rid:  # an older answer came after its timeout
                            break
            except (OSError, TimeoutError, ValueError) as e:
                raise HubError(f"the zygote did not answer: {e!r}") from None
        if "pid" not in reply:
            raise HubError(f"the zygote could not fork: {reply.get('error')}")
        return int(reply["pid"])

    async def aclose(self, grace: float = 3.0) -> None:
        """Close its socket (it exits on EOF); SIGKILL after `grace`."""
        self.sock.close()
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Spawner:
    """Starts children for the tree, from the zygote when there is one."""

    def __init__(self) -> None:
        self.zygote: Zygote | None = None
        self._use_zygote = _forked is not None

    def start(self) -> None:
        """Take over the forked zygote (call with the loop running)."""
        global _forked
        if _forked is not None:
            self.zygote = Zygote(*_forked)
            _forked = None

    def pids(self) -> list[int]:
        z = self.zygote
        return [z.proc.pid] if z is not None and z.alive else []

    async def spawn(self, kind: str, index: int, ipc: socket.socket, instance: str, run_dir: str,
                    config: Config) -> Process:
        if not self._use_zygote:
            return await asyncio.create_subprocess_exec(
                sys.executable, *child_argv(kind, index, ipc.fileno(), instance, run_dir),
                pass_fds=(ipc.fileno(),), env=child_env(config), stdin=asyncio.subprocess.DEVNULL)
        for attempt in (1, 2):
            z = self.zygote
            if z is None or not z.alive:
                if z is not None:
                    log.warning("the zygote (pid %d) exited (%s); starting another", z.proc.pid, z.proc.returncode)
                    await z.aclose()
                z = self.zygote = Zygote.exec()
            try:
                return ChildProcess(await z.spawn(kind, index, ipc.fileno(), instance, run_dir, config))
            except HubError as e:
                log.error("spawning %s-%d: %s", kind, index, e)
                z.proc.kill()  # replaced on the next attempt
                await z.proc.wait()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self.zygote is not None:
            await self.zygote.aclose()
            self.zygote = None
