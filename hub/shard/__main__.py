from __future__ import annotations

import uvloop

from ..child import bootstrap
from .main import run_shard

if __name__ == "__main__":
    uvloop.run(run_shard(bootstrap("shard")))
