"""The cluster's configuration keys, checked where `hub.config` checks the rest.

Kept apart from the Redis modules so reading a configuration never imports
the Redis client. Raises BadRequest; `hub.config` turns it into ConfigError.
"""

from __future__ import annotations

import argparse
import re
import socket
from typing import Any

from ..errors import BadRequest

#: Environment variables and flags (their argparse destinations) -> config keys.
CLUSTER_ENV_KEYS = {"HUB_CLUSTER": "cluster", "HUB_NODE_NAME": "node_name", "HUB_ADVERTISE": "advertise"}
CLUSTER_FLAG_KEYS = {"cluster": "cluster", "node_name": "node_name", "advertise": "advertise"}


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", metavar="redis://HOST:PORT/DB",
                   help="join a cluster: users, routes and the stream directory in this Redis")
    p.add_argument("--node-name", metavar="NAME", help="this node's name in the cluster (default: the host name)")
    p.add_argument("--advertise", metavar="HOST:PORT",
                   help="where the other nodes reach this one (default: the listen address, or the host name)")

_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SCHEMES = ("redis", "rediss", "unix")
_WILDCARDS = ("0.0.0.0", "::", "")


def mask_url_password(url: str, mask: str = "********") -> str:
    """`redis://user:********@host/0`: a URL's password hidden, the rest shown."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.partition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{mask}@{host}"


def check_cluster_keys(d: dict[str, Any]) -> None:
    """`cluster` a Redis URL (redis://, rediss://, unix://); `node_name` a
    DNS-label-like name; `advertise` HOST:PORT that other nodes can dial.
    Normalises `d` in place (stripped strings)."""
    for key in ("cluster", "node_name", "advertise"):
        if not isinstance(d[key], str):
            raise BadRequest(f"{key}: expected a string, got {d[key]!r}")
        d[key] = d[key].strip()
    url = d["cluster"]
    if url and ("://" not in url or url.partition("://")[0].lower() not in _SCHEMES):
        raise BadRequest(f"cluster: expected redis://HOST:PORT/DB, got {mask_url_password(url)!r}")
    name = d["node_name"]
    if name and not _NODE_NAME.fullmatch(name):
        raise BadRequest(f"node_name: letters, digits, '.', '_' and '-' (at most 63), got {name!r}")
    adv = d["advertise"]
    if adv:
        host, port = split_host_port(adv)
        if host in _WILDCARDS or port == 0:
            raise BadRequest(f"advertise: expected HOST:PORT that other nodes can dial, got {adv!r}")


def split_host_port(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`; BadRequest when it is not one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise BadRequest(f"advertise: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port_text)


def node_name(configured: str) -> str:
    """This node's name: the configured one, else the host's name (a pod's name)."""
    if configured:
        return configured
    name = socket.gethostname().split(".", 1)[0]
    return name if _NODE_NAME.fullmatch(name) else "node"


def advertise_address(configured: str, listen_host: str, port: int) -> str:
    """Where other nodes dial this one: the configured address, else the
    listen address, else (a wildcard listen) the host's name with the port."""
    if configured:
        return configured
    if listen_host not in _WILDCARDS:
        return f"[{listen_host}]:{port}" if ":" in listen_host else f"{listen_host}:{port}"
    return f"{socket.getfqdn()}:{port}"
