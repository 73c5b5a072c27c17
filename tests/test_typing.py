"""The whole package stays `mypy --strict` clean (settings: pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_on_the_whole_package() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:]
