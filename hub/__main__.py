"""`python -m hub` and the `ipchub` console script."""

from __future__ import annotations

import json
import sys
from typing import Sequence

from .config import ConfigError, build_parser, config_from_args


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
    from .supervisor.main import run

    # SIGHUP reads the same file, environment and flags again.
    return run(config, lambda: config_from_args(args))


if __name__ == "__main__":
    sys.exit(main())
