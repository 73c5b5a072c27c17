"""What every child process (shard, front) does first.

The supervisor starts children as `python -m hub.shard` / `python -m hub.api`
with the IPC socket's fd inherited, the configuration in the environment and
its identity on the command line.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
from dataclasses import dataclass

from .config import Config
from .logs import set_process_title, setup_logging

CONFIG_ENV = "HUB_CHILD_CONFIG"


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


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us if the supervisor dies without cleaning up."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def bootstrap(kind: str) -> ChildArgs:
    p = argparse.ArgumentParser(prog=f"hub.{kind}")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--ipc-fd", type=int, required=True)
    p.add_argument("--instance", required=True)
    p.add_argument("--run-dir", required=True)
    a = p.parse_args()
    config = Config.from_dict(json.loads(os.environ[CONFIG_ENV]))
    args = ChildArgs(kind, a.index, a.ipc_fd, a.instance, a.run_dir, config)
    _die_with_parent()
    set_process_title(args.name)
    setup_logging(args.name, config.log)
    return args


def shard_socket_path(run_dir: str, index: int) -> str:
    return os.path.join(run_dir, f"shard-{index}.sock")
