"""The configuration's shape: one frozen dataclass per section of
config.json, the whole `Config` with what is derived from it, and what a
reload compares (`changed_keys`, `RELOADABLE_KEYS`). Reading and checking
the sources is `hub.config.load`'s job."""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .values import ConfigError, default_processes
from .webrtc import WebRtcConfig

DEFAULT_PORT = 1554


@dataclass(frozen=True)
class TlsConfig:
    listen: str = ""
    cert: str = ""
    key: str = ""


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    tofile: bool = False
    filename: str = "./logs/ipchub.log"
    maxsize: int = 20
    maxdays: int = 7
    maxbackups: int = 14
    compress: bool = False
    format: str = "text"  # "text" or "json" (one object per line)
    access: bool = False  # one line per player/publisher session at its end


@dataclass(frozen=True)
class MetricsConfig:
    token: str | None = None  # None: /metrics answers loopback clients only
    max_paths: int = 100  # per-path series beyond this are summed under one label


@dataclass(frozen=True)
class LimitsConfig:
    """Operator limits; 0 means unlimited."""
    players_per_stream: int = 0
    players: int = 0
    publishers: int = 0
    connections_per_ip: int = 0


@dataclass(frozen=True)
class HlsConfig:
    variant: str = "ts"  # what `.m3u8` serves without ?variant=: "ts", "fmp4" or "ll"


HLS_VARIANTS = ("ts", "fmp4", "ll")

# Nested objects of config.json that map to a dataclass field of their own.
SECTIONS = ("tls", "log", "metrics", "limits", "webrtc", "hls")

# Keys a SIGHUP reload applies without dropping anyone (dotted names as in
# config.json); any other changed key is logged as needing a restart.
RELOADABLE_KEYS = frozenset({
    "log.level", "auth", "cache_gop", "hlsfragment", "metrics.token",
    "limits.players_per_stream", "limits.players", "limits.publishers",
    "limits.connections_per_ip",
})

# Keys whose values are secrets: `--check-config` prints them masked.
SECRET_KEYS = frozenset({"metrics.token", "cluster"})  # a Redis URL may hold a password
MASK = "********"


@dataclass(frozen=True)
class Config:
    # ipchub's keys
    listen: str = f":{DEFAULT_PORT}"
    auth: bool = False
    cache_gop: bool = True
    hlsfragment: int = 2
    hlspath: str = ""
    profile: bool = False
    tls: TlsConfig = field(default_factory=TlsConfig)
    routetable_file: str = "routetable.json"
    users_file: str = "users.json"
    log: LogConfig = field(default_factory=LogConfig)
    # ours
    data: str = "./data"
    shards: int = 0  # 0 = one per CPU (one on a box of 1-2 CPUs)
    fronts: int = 0  # 0 = one per CPU (one on a box of 1-2 CPUs)
    rtp_port_min: int = 16000
    rtp_port_max: int = 19999
    multicast_group: str = "235.0.0.1"
    multicast_port_min: int = 16666
    multicast_port_max: int = 17665
    multicast_ttl: int = 127
    rtsp_session_timeout: float = 60.0
    auth_scheme: str = "digest"  # "digest" or "basic", for RTSP
    route_idle_timeout: float = 300.0
    drain_grace: float = 10.0  # SIGTERM: seconds live players run on before closing
    rtmp_port: int = 1935  # RTMP's own port on the listen host (0 = only the shared port)
    fanout_window: int = 0  # ms a front gathers a stream's frames into one write per player (0 = none)
    ingest_window: int = 0  # ms a shard lets a live TCP source's bytes gather between reads (0 = read at once)
    # The same for a source whose stream nobody needs at once (no player, LL-HLS player, relay; HLS
    # segments and recordings take windows too); 0 = read at once
    unwatched_ingest_window: int = 40
    memory_merge: bool = False  # mark the tree's memory mergeable by the kernel's KSM (hub.ksm)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    webrtc: WebRtcConfig = field(default_factory=WebRtcConfig)
    hls: HlsConfig = field(default_factory=HlsConfig)
    # recording: rules (hub.store.recordings) and the folder ("" = DATA/recordings)
    record: list[dict[str, Any]] = field(default_factory=list)
    recordings: str = ""
    cluster: str = ""  # redis://HOST:PORT/DB: several nodes behind one name (hub.cluster); "" = alone
    node_name: str = ""  # "" = the host name
    advertise: str = ""  # HOST:PORT other nodes reach this one at; "" = from listen / the host name

    # -- derived -------------------------------------------------------
    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def listen_hosts(self) -> tuple[str, ...]:
        return listen_hosts(self.listen)

    @property
    def shard_count(self) -> int:
        return self.shards or default_processes()

    @property
    def front_count(self) -> int:
        return self.fronts or default_processes()

    def data_path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else Path(self.data) / p

    @property
    def recordings_path(self) -> Path:
        return Path(self.recordings) if self.recordings else Path(self.data) / "recordings"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        d = dict(d)
        d["tls"] = TlsConfig(**d.get("tls", {}))
        d["log"] = LogConfig(**d.get("log", {}))
        d["metrics"] = MetricsConfig(**d.get("metrics", {}))
        d["limits"] = LimitsConfig(**d.get("limits", {}))
        w = dict(d.get("webrtc", {}))
        for k in ("public_addresses", "ice_servers"):
            if k in w:
                w[k] = tuple(w[k])
        d["webrtc"] = WebRtcConfig(**w)
        d["hls"] = HlsConfig(**d.get("hls", {}))
        return cls(**d)

    def to_file_dict(self, mask_secrets: bool = False) -> dict[str, Any]:
        """The configuration in config.json's shape (ipchub's nesting plus ours).

        Loading the result as a config file gives this configuration back
        (unless secrets were masked).
        """
        d = self.to_dict()
        out: dict[str, Any] = {}
        for k, v in d.items():
            if k in ("routetable_file", "users_file"):
                out[k[:-5]] = {"provider": "json", "config": {"file": v}}
            elif k in ("rtp_port_min", "multicast_group", "multicast_port_min", "multicast_ttl"):
                continue
            elif k == "rtp_port_max":
                out["rtp_ports"] = f"{self.rtp_port_min}-{self.rtp_port_max}"
            elif k == "webrtc":
                out[k] = {**v, "public_addresses": list(v["public_addresses"]),
                          "ice_servers": list(v["ice_servers"])}
            elif k == "multicast_port_max":
                out["multicast"] = {"group": self.multicast_group,
                                    "ports": f"{self.multicast_port_min}-{self.multicast_port_max}",
                                    "ttl": self.multicast_ttl}
            else:
                out[k] = v
        if mask_secrets:
            for key in SECRET_KEYS:
                section, _, name = key.rpartition(".")
                holder = out[section] if section else out
                if holder.get(name):
                    holder[name] = MASK
        return out


def _dotted(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_keys(old: Config, new: Config) -> set[str]:
    """Dotted config.json names whose values differ between two configurations."""
    a, b = _dotted(old.to_file_dict()), _dotted(new.to_file_dict())
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def restart_needed(old: Config, new: Config) -> set[str]:
    """Changed keys that a reload cannot apply (see RELOADABLE_KEYS)."""
    return changed_keys(old, new) - RELOADABLE_KEYS


def split_listen(listen: str) -> tuple[str, int]:
    """`":1554"`, `"127.0.0.1:1554"`, `"[::1]:1554"` -> (host, port); no
    host is "0.0.0.0" here (IPv4's sockets: WebRTC's), and every address,
    IPv6's too, for the listening sockets (`listen_hosts`)."""
    host, port = _split_listen(listen)
    return host or "0.0.0.0", port


#: What binding the IPv6 wildcard of `listen_hosts` raises where the kernel
#: has no IPv6: the listeners and the WebRTC ports then take IPv4's alone.
NO_IPV6_ERRNOS = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL)


def listen_hosts(listen: str) -> tuple[str, ...]:
    """The hosts the fronts listen on: the one `listen` names, or with none
    (`:1554`) IPv4's and IPv6's wildcards, as Go's `:1554` (ipchub's) is."""
    host, _port = _split_listen(listen)
    return (host,) if host else ("0.0.0.0", "::")


def _split_listen(listen: str) -> tuple[str, int]:
    text = listen.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, str(DEFAULT_PORT)
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"listen: bad port in {listen!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"listen: port {port} out of range")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise ConfigError(f"listen: bad host {host!r}") from None
    return host, port
