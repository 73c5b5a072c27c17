"""`python -m hub` and the `ipchub` console script."""

from __future__ import annotations

import sys
from typing import Sequence

from .config import ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as e:
        print(f"ipchub: configuration error: {e}", file=sys.stderr)
        return 2
    from .supervisor.main import run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
