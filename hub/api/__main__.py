from __future__ import annotations

import uvloop

from ..child import bootstrap
from .process import run_front

if __name__ == "__main__":
    uvloop.run(run_front(bootstrap("front")))
