"""What every child process (shard, front) does first.

A child is forked by the zygote (`hub.zygote`), which hands it its
identity, the configuration and the IPC socket's fd; without a zygote
(`HUB_ZYGOTE=0`, or a kernel without pidfds) the supervisor starts it as
`python -m hub.shard` / `python -m hub.api` with the IPC fd inherited, the
configuration in the environment and its identity on the command line.
Either way `setup_child` runs before anything else.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import time
from dataclasses import dataclass

from .config import Config
from .logs import set_process_title, setup_logging

CONFIG_ENV = "HUB_CHILD_CONFIG"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildArgs:
    kind: str
    index: int
    ipc_fd: int
    instance: str
    run_dir: str
    config: Config

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"


def child_argv(kind: str, index: int, ipc_fd: int, instance: str, run_dir: str) -> list[str]:
    module = {"shard": "hub.shard", "front": "hub.api"}[kind]
    return ["-m", module, "--index", str(index), "--ipc-fd", str(ipc_fd),
            "--instance", instance, "--run-dir", run_dir]


def child_env(config: Config) -> dict[str, str]:
    env = dict(os.environ)
    env[CONFIG_ENV] = json.dumps(config.to_dict())
    return env


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> None:
    """Ask Linux to send us `sig` when our parent dies without cleaning up.

    With `parent`, the pid the parent must be: if it died before the
    request took effect we are someone else's orphan already, so exit.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def wait_for_parent(parent: int, timeout: float = 5.0) -> bool:
    """Until `parent` is our parent (a forked child re-parented to the
    supervisor once the zygote's short-lived middle process exits)."""
    deadline = time.monotonic() + timeout
    while os.getppid() != parent:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def setup_child(args: ChildArgs, parent: int | None = None) -> None:
    """Name the process, set up its logs, and die with the supervisor."""
    die_with_parent(signal.SIGTERM, parent)
    if args.config.memory_merge:  # a forked child has it already; an exec'd one not
        from . import ksm

        ksm.mark_mergeable()
    set_process_title(args.name)
    setup_logging(args.name, args.config.log)


def bootstrap(kind: str) -> ChildArgs:
    """A child started with exec: its arguments from argv and the environment."""
    p = argparse.ArgumentParser(prog=f"hub.{kind}")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--ipc-fd", type=int, required=True)
    p.add_argument("--instance", required=True)
    p.add_argument("--run-dir", required=True)
    a = p.parse_args()
    config = Config.from_dict(json.loads(os.environ[CONFIG_ENV]))
    args = ChildArgs(kind, a.index, a.ipc_fd, a.instance, a.run_dir, config)
    setup_child(args)
    return args


def shard_socket_path(run_dir: str, index: int) -> str:
    return os.path.join(run_dir, f"shard-{index}.sock")
