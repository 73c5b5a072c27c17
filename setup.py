"""The build: `pyproject.toml` says what the package is; this adds the hot
path's modules (`hub/compiled.py`'s HOT) compiled by mypyc (`bench/ingest.py`
and `bench/rtsp.py` measure what it saves). `HUB_PURE_PYTHON=1` builds none,
and a machine without a C compiler skips them (the extensions are optional):
the same package then runs from its sources."""

import os
import runpy

from setuptools import setup

here = os.path.dirname(os.path.abspath(__file__))
spec = runpy.run_path(os.path.join(here, "hub", "compiled.py"))
ext_modules = []
if os.environ.get("HUB_PURE_PYTHON", "").strip().lower() not in ("1", "yes", "true", "on"):
    from mypyc.build import mypycify

    # The build's own environment has none of the runtime dependencies:
    # their types are Any here, and the checks are mypy's defaults (`make
    # lint` checks the package with them, strict).
    flags = ["--config-file", os.devnull, "--ignore-missing-imports"]
    ext_modules = mypycify(flags + [m.replace(".", "/") + ".py" for m in spec["HOT"]],
                           group_name=spec["GROUP"], opt_level="3")
    for ext in ext_modules:
        ext.optional = True
setup(ext_modules=ext_modules)
