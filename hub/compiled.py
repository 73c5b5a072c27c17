"""The hot path's modules that the build compiles with mypyc (`setup.py`),
and which of them this interpreter runs compiled.

Why: a publisher's every packet runs through these modules (RTP headers,
depacketising, access units into the ring); compiled, the same source
costs ~1.4x less CPU, and a shard ~20% less per publisher in all
(`bench/ingest.py` measures both ways in one run). They are typed for
`mypy --strict` anyway, which is what mypyc needs; the sources stay the
reference and run as they are where nothing was compiled
(`HUB_PURE_PYTHON=1` at install, or no C compiler), or where
`HUB_PURE_PYTHON=1` is set when the server starts (`sources_only`).

A compiled module sits beside its source (`rtp_in.cpython-311-...so` next
to `rtp_in.py`) and wins the import, so a source edited after the build
would not run: `make` rebuilds them when a source is newer, and `stale()`
names any that are older than their source.

Nothing here imports the package: `setup.py` reads `HOT` from this file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES

#: Compiled together (one shared library, `hub/hot__mypyc`): the publisher's
#: path from a read's bytes to the ring.
HOT = (
    "hub.media.dts",
    "hub.media.rtmp.chunk",
    "hub.media.rtmp.media",
    "hub.media.rtmp.server",
    "hub.media.rtp_aac",
    "hub.media.rtp_h264",
    "hub.media.rtp_h265",
    "hub.media.rtp_nal",
    "hub.media.seqnum",
    "hub.ring.writer",
    "hub.shard.ingest",
    "hub.shard.publish",
    "hub.shard.rtmp_publish",
    "hub.shard.rtp_in",
    "hub.shard.stream",
)
#: `setup.py`'s group name: the shared library is `hub/hot__mypyc*.so`.
GROUP = "hub.hot"


def _is_extension(path: str | None) -> bool:
    return bool(path) and any(str(path).endswith(s) for s in EXTENSION_SUFFIXES)


def modules() -> list[str]:
    """The HOT modules this interpreter loads compiled (importing them)."""
    return [name for name in HOT if _is_extension(getattr(importlib.import_module(name), "__file__", None))]


def stale() -> list[str]:
    """HOT modules whose compiled file is older than their source (found
    without importing them): the source's edits would not run."""
    out = []
    # A module's extension is a small shim that the build leaves as it was
    # when unchanged; the code runs from the group's library: the newer of
    # the two is when the module was last compiled.
    package = os.path.dirname(os.path.abspath(__file__))
    prefix = GROUP.rsplit(".", 1)[1] + "__mypyc"
    group = [os.path.join(package, f) for f in os.listdir(package) if f.startswith(prefix) and _is_extension(f)]
    built_group = max((os.stat(f).st_mtime for f in group), default=0.0)
    for name in HOT:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if not origin or not _is_extension(origin):
            continue
        source = os.path.join(os.path.dirname(origin), name.rsplit(".", 1)[1] + ".py")
        try:
            if os.stat(source).st_mtime > max(os.stat(origin).st_mtime, built_group):
                out.append(name)
        except OSError:
            continue
    return out


def sources_only() -> None:
    """From now on, load the package's modules from their sources even
    where a compiled one sits beside them (everything else as usual): call
    before the first import of a HOT module (`hub/__init__.py` does when
    `HUB_PURE_PYTHON=1`). For benchmarks and tests that compare the two."""
    from importlib.abc import PathEntryFinder
    from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader

    package = os.path.dirname(os.path.abspath(__file__))
    finder = FileFinder.path_hook((SourceFileLoader, SOURCE_SUFFIXES))

    def hook(path: str) -> PathEntryFinder:
        if os.path.abspath(path).startswith(package):
            return finder(path)
        raise ImportError(path)  # not ours: the next hook's

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()
