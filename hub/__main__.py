"""`python -m hub` and the `ipchub` console script."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from .config import ConfigError, build_parser, config_from_args


def start_zygote() -> None:
    """Fork the zygote (hub.zygote) now, before the supervisor has a loop or
    a thread. Everything the tree runs is imported here first and shared by
    the supervisor, the zygote and every child, one copy for all: what the
    supervisor runs and the children run too (the event loop, the control
    plane, the stores, ring names, process figures), the supervisor's own
    code, and the children's (`zygote.PRELOAD`). The children's code used to
    be imported by the zygote after this fork: its imports then touched, and
    so copied, the pages of what both had imported (module registries,
    typing and enum machinery), which the supervisor kept the originals of;
    imported here, the idle 2 + 2 tree is 2.6-2.8 MiB smaller
    (bench/footprint.py, same run). The supervisor never runs the
    children's code, so those pages stay shared and unread."""
    import importlib

    from . import zygote

    if not zygote.enabled():
        return
    # Imported to be shared (see above): not used here.
    import asyncio  # noqa: F401
    import platform  # noqa: F401
    import shutil  # noqa: F401
    import tempfile  # noqa: F401

    import uvloop  # noqa: F401

    from . import gotime, hls_files, logs, placement, procstats, ring, store  # noqa: F401
    from .ipc import channel  # noqa: F401
    from .supervisor import main as _supervisor  # noqa: F401
    from .supervisor.spawn import use_forked_zygote

    for name in zygote.PRELOAD:
        importlib.import_module(name)

    # The zygote and every child it forks inherit the open-file limit in
    # force now: raise it first (the supervisor would, later, for itself only).
    _supervisor.raise_nofile_limit()
    use_forked_zygote(*zygote.fork_zygote())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as e:
        print(f"ipchub: configuration error: {e}", file=sys.stderr)
        return 2
    if args.check_config:
        # The effective configuration in config.json's shape, so it can be
        # saved and edited; secrets are masked.
        print(json.dumps(config.to_file_dict(mask_secrets=True), indent=2))
        return 0
    if config.memory_merge:  # first: the zygote and every child inherit it
        from . import ksm

        ksm.mark_mergeable()
    start_zygote()
    from .supervisor.main import run

    # SIGHUP reads the same file, environment and flags again.
    return run(config, lambda: config_from_args(args))


if __name__ == "__main__":
    sys.exit(main())
