"""STYLE.md: hub/media, hub/ring and hub/ipc stay `mypy --strict` clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_on_the_sans_io_packages() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
                        "hub/media", "hub/ring", "hub/ipc"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:]
