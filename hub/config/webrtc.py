"""The `webrtc` section of the configuration (docs/webrtc.md): its fields
and their checks, applied by `hub.config.load` with the rest."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from .values import ConfigError, as_int, as_list, as_seconds, default_processes

__all__ = ["WebRtcConfig", "validate_webrtc"]


@dataclass(frozen=True)
class WebRtcConfig:
    """WHEP playback and WHIP ingest (docs/webrtc.md).

    ICE-lite on UDP: front i takes port `udp_port + i`, shard j (WHIP
    publishers) `udp_port + fronts + j`; 0 lets each process take any free
    port (no NAT in the way). The answers' candidates are
    `public_addresses` when set (the addresses clients reach the ports at:
    a NAT's or a container host's), else the address the HTTP request
    came in on."""
    udp_port: int = 0
    public_addresses: tuple[str, ...] = ()
    ice_servers: tuple[str, ...] = ()  # stun:/turn: URLs offered to clients (OPTIONS, Link headers)
    consent_timeout: float = 30.0  # seconds without an ICE consent refresh before a session ends


def validate_webrtc(d: dict[str, Any]) -> None:
    w = d["webrtc"]
    port = as_int("webrtc.udp_port", w["udp_port"], 0, 65535)
    processes = (d["fronts"] or default_processes()) + (d["shards"] or default_processes())
    if port and not 1024 <= port <= 65536 - processes:
        raise ConfigError(f"webrtc.udp_port: {port} and the {processes - 1} ports after it "
                          f"(one per front and shard) must lie in 1024..65535")
    w["udp_port"] = port
    addresses = as_list("webrtc.public_addresses", w["public_addresses"], 8)
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            raise ConfigError(f"webrtc.public_addresses: {a!r} is not an IP address") from None
        if ip.is_unspecified or ip.is_multicast:
            raise ConfigError(f"webrtc.public_addresses: {a!r} cannot be reached by clients")
    w["public_addresses"] = tuple(str(ipaddress.ip_address(a)) for a in addresses)
    servers = as_list("webrtc.ice_servers", w["ice_servers"], 8)
    for s in servers:
        if not s.startswith(("stun:", "stuns:", "turn:", "turns:")) or len(s) > 256 \
                or any(c in s for c in ' <>"\\,;'):
            raise ConfigError(f"webrtc.ice_servers: {s!r} is not a stun:/turn: URL")
    w["ice_servers"] = tuple(servers)
    w["consent_timeout"] = as_seconds("webrtc.consent_timeout", w["consent_timeout"], 1.0, 30.0)
