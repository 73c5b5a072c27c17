"""Kernel same-page merging (KSM) for the tree's memory, when asked for.

Why: every process of the tree starts from the zygote's pages, and each
copies the pages it touches (reference counts, 3.11's in-place quickening
of the code that runs). Most copies end up the same in processes of one
kind: two shards' or two fronts' private pages are ~85% identical, and
~1.5 MiB of each child's copies are identical to the zygote's again
(measured: docs/architecture.md). The kernel's KSM can merge such pages
back into one, if the process marked its memory mergeable and the
machine runs KSM (`/sys/kernel/mm/ksm/run`, the operator's choice, off by
default: deploy/README.md says what its scanning costs).

`memory_merge` (config) marks the whole process with
`prctl(PR_SET_MEMORY_MERGE)` (Linux 6.4+), which its forks inherit: the
supervisor before it forks the zygote, and each child again at its start
(a child exec'd without the zygote starts with a new address space). With
KSM off it costs nothing.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_MEMORY_MERGE = 67
PR_GET_MEMORY_MERGE = 68
KSM_RUN = "/sys/kernel/mm/ksm/run"


def _prctl(option: int, arg: int = 0) -> int:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, arg, 0, 0, 0))
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return -1


def mark_mergeable() -> bool:
    """Mark this process's memory (and its future forks') mergeable; False
    where the kernel cannot (before 6.4, or KSM not built in)."""
    return _prctl(PR_SET_MEMORY_MERGE, 1) == 0


def is_marked() -> bool:
    return _prctl(PR_GET_MEMORY_MERGE) == 1


def ksm_running() -> bool | None:
    """Whether the machine's KSM scans (None: no KSM here)."""
    try:
        with open(KSM_RUN) as f:
            return f.read().strip() == "1"
    except OSError:
        return None


def describe() -> str:
    """One line for the log at start."""
    running = ksm_running()
    state = "no KSM in this kernel" if running is None else (
        "KSM is running" if running else f"KSM is off ({KSM_RUN} = 0: nothing is merged)")
    return f"memory_merge: this tree's memory is mergeable; {state} (pid {os.getpid()})"
