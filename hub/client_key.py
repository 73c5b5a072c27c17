"""What per-client limits count by: a client's address, the way an operator
would block it.

An IPv4 address is one client. An IPv6 client is given a whole /64 (one
LAN's prefix; the host picks its address within it and may pick a new one
for every connection), so limits count the /64: counted by full address, a
single IPv6 host could open 2^64 "clients". An IPv4-mapped IPv6 address
(`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) is its
IPv4 address. Anything else (a name, an empty string) is itself.
"""

from __future__ import annotations

import ipaddress

__all__ = ["client_key", "is_ipv6"]


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def client_key(host: str) -> str:
    """`host` as a per-client limit's key: IPv4 itself, IPv6 its /64."""
    addr = _address(host)
    if addr is None:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr)


def is_ipv6(host: str) -> bool:
    """Whether a peer is an IPv6 client (an IPv4-mapped address, what a
    dual-stack socket reports for an IPv4 one, is not)."""
    addr = _address(host)
    return isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is None
