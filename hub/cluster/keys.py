"""Every Redis key and channel the cluster uses, and the JSON they hold.

One Redis database per cluster (`redis://HOST:PORT/DB`); everything is
under `hub:` so a shared database still shows whose keys these are.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "hub:"

#: The token signing key (raw bytes) and the relay credential's secret.
TOKEN_KEY = PREFIX + "token-key"
RELAY_SECRET = PREFIX + "relay-secret"
#: Held by the node that imports its files into an empty Redis.
BOOTSTRAP = PREFIX + "bootstrap"
#: Store changes: {"kind", "rev", "node"}.
CHANGED = PREFIX + "changed"
#: Names of the nodes (each also has a node key with a TTL).
NODES = PREFIX + "nodes"


def table_key(kind: str) -> str:
    """A table's JSON (the content of its file in the data folder)."""
    return f"{PREFIX}store:{kind}"


def rev_key(kind: str) -> str:
    """A table's revision: bumped by every change, WATCHed by every writer."""
    return f"{PREFIX}store:{kind}:rev"


def node_key(name: str) -> str:
    return f"{PREFIX}node:{name}"


def stream_key(path: str) -> str:
    """The directory entry of a canonical stream path."""
    return f"{PREFIX}stream:{path}"


def rpc_channel(name: str) -> str:
    """Requests to a node, and the answers to its own requests."""
    return f"{PREFIX}rpc:{name}"


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
