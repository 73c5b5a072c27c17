"""The zygote: one small process that imports the children's code once and
forks every shard and front from it.

Why: a fresh interpreter that imports what a front runs holds ~30 MB of its
own (code objects, module dicts, extension modules' data), and five of them
cannot go below ~60 MB. Children forked from one process that imported the
code and froze those objects (`gc.freeze`, so no collection in a child
writes to their pages) share the pages copy-on-write: a child holds only
what it touches or allocates after the fork.

Why a process of its own: fork() from a process that runs an event loop or
threads copies their state half-done (the selector, locks held by other
threads, signal wake-up fds); the zygote runs none — one thread, blocking
reads of one socket. `fork_zygote` forks it from `python -m hub` before the
supervisor starts its loop, once that has imported everything, the
children's code (`PRELOAD`) included, so the supervisor, the zygote and the
children share one copy of all of it; a zygote that died is replaced by
`python -m hub.zygote` (`hub.supervisor.spawn`), a fresh interpreter that
imports `PRELOAD` itself.

Parentage: the supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER). The
zygote forks a short-lived middle process, which forks the child and exits,
so the child is re-parented to the supervisor: the supervisor reaps it and
reads its exit status through a pidfd as if it had spawned it itself, and
a dead zygote takes no child with it. The child waits for the re-parenting,
then asks for PR_SET_PDEATHSIG (so it dies with the supervisor, not with
the middle process).

Protocol, over a SOCK_SEQPACKET socketpair (one datagram per message, JSON):
the supervisor sends {"id", "kind", "index", "instance", "run_dir",
"config", "parent"} with the child's IPC socket as SCM_RIGHTS; the zygote
answers {"id", "pid"} or {"id", "error"}. The zygote exits when the
supervisor closes its end (or dies: PR_SET_PDEATHSIG).

Nothing imported here may start a thread or open a loop at import time,
nor take per-process state then (a pid, a psutil.Process, random bytes
kept for later): every child would inherit the zygote's.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import logging
import os
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

from .heap import trim_heap

PR_SET_CHILD_SUBREAPER = 36
#: The code of both kinds of child, imported before any child is forked
#: (by `python -m hub` before the zygote's fork, by a replacement zygote
#: itself). A shard never touches the front's pages, nor the supervisor
#: either child's: they stay shared and unread.
PRELOAD = ("hub.shard.main", "hub.api.process")
#: Largest request (the configuration is a few KiB).
MAX_MESSAGE = 1 << 20
ENV_OFF = "HUB_ZYGOTE"

log = logging.getLogger("hub.zygote")


def enabled() -> bool:
    """Children come from a zygote unless `HUB_ZYGOTE=0` or the kernel has
    no pidfds (Linux < 5.4): then each is a fresh `python -m` of its own."""
    if os.environ.get(ENV_OFF, "1").strip().lower() in ("0", "no", "off", "false"):
        return False
    return hasattr(os, "pidfd_open") and hasattr(os, "P_PIDFD")


def become_subreaper() -> bool:
    """Orphaned descendants (the zygote's children) become ours to reap."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def fork_zygote() -> tuple[int, socket.socket]:
    """Fork the zygote from this process, which must have no loop and no
    thread yet (`python -m hub`, before the supervisor runs); its pid and
    the supervisor's end of its control socket."""
    become_subreaper()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = os.getpid()
    # What both sides imported so far stays shared: no collection on either
    # side touches those objects again (they live as long as the process).
    gc.freeze()
    trim_heap()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the zygote
        ours.close()
        serve(theirs, parent)
    theirs.close()
    return pid, ours


# -- inside the zygote --------------------------------------------------------------
def serve(sock: socket.socket, parent: int) -> NoReturn:
    """The zygote's life: import, freeze, then fork a child per request."""
    code = 0
    try:
        _prepare(parent)
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 4)
            except InterruptedError:
                continue
            if not msg:
                break  # the supervisor closed its end
            reply = _handle(msg, fds, sock, parent)
            sock.send(reply)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _prepare(parent: int) -> None:
    from .child import die_with_parent
    from .logs import set_process_title

    # The supervisor alone decides when the tree stops (a terminal's ^C
    # reaches the whole process group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL, parent)
    set_process_title("zygote")
    gc.disable()  # no holes in the pages the children will share
    for name in PRELOAD:
        importlib.import_module(name)
    gc.freeze()
    trim_heap()


def _handle(msg: bytes, fds: list[int], sock: socket.socket, parent: int) -> bytes:
    rid: Any = None
    try:
        req = json.loads(msg)
        rid = req.get("id")
        if len(fds) != 1:
            raise ValueError(f"expected one fd, got {len(fds)}")
        pid = _fork_child(req, fds[0], sock, parent)
        return json.dumps({"id": rid, "pid": pid}).encode()
    except Exception as e:  # reported to the supervisor, which logs it
        return json.dumps({"id": rid, "error": repr(e)}).encode()
    finally:
        for fd in fds:
            os.close(fd)


def _fork_child(req: dict[str, Any], fd: int, sock: socket.socket, parent: int) -> int:
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:  # pragma: no cover - the middle process
        code = 1
        try:
            os.close(r)
            pid = os.fork()
            if pid == 0:
                os.close(w)
                _become_child(req, fd, sock, parent)
            os.write(w, pid.to_bytes(8, "little"))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        data = os.read(r, 8)
    finally:
        os.close(r)
        os.waitpid(middle, 0)
    if len(data) != 8:
        raise RuntimeError("the middle process could not fork")
    return int.from_bytes(data, "little")


def _become_child(req: dict[str, Any], fd: int, sock: socket.socket, parent: int) -> NoReturn:  # pragma: no cover
    """The forked child: set up as a shard or a front, run it, exit."""
    code = 1
    try:
        from .child import ChildArgs, setup_child, wait_for_parent
        from .config import Config

        sock.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        gc.enable()
        if not wait_for_parent(parent):
            raise RuntimeError("not re-parented to the supervisor")
        args = ChildArgs(str(req["kind"]), int(req["index"]), fd, str(req["instance"]), str(req["run_dir"]),
                         Config.from_dict(req["config"]))
        setup_child(args, parent=parent)
        run_child(args)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        logging.getLogger("hub").critical("child failed", exc_info=True)
        code = 1
    finally:
        try:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_child(args: Any) -> None:
    """Run a shard or a front until it stops."""
    import uvloop

    if args.kind == "shard":
        from .shard.main import run_shard

        uvloop.run(run_shard(args))
    else:
        from .api.process import run_front

        uvloop.run(run_front(args))


def main() -> None:
    """`python -m hub.zygote --fd N --parent PID` (a replacement zygote)."""
    p = argparse.ArgumentParser(prog="hub.zygote")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--parent", type=int, required=True)
    a = p.parse_args()
    serve(socket.socket(fileno=a.fd), a.parent)


if __name__ == "__main__":
    main()
