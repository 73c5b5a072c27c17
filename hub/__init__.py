"""hub: a streaming media server compatible with ipchub."""

import os as _os

__version__ = "0.1.0"

# `HUB_PURE_PYTHON=1`: run the hot path from its sources even where its
# compiled modules are built (hub/compiled.py), in every process of the tree.
if _os.environ.get("HUB_PURE_PYTHON", "").strip().lower() in ("1", "yes", "true", "on"):
    from .compiled import sources_only as _sources_only

    _sources_only()
