"""Configuration: ipchub's config.json keys, our own keys, HUB_* env and flags.

Precedence, lowest first: built-in defaults, the config file, `HUB_*`
environment variables, command-line flags. Every value is checked once here;
a bad one stops the start with a message naming the key (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config_values import ConfigError as ConfigError  # raised here, caught by callers of hub.config
from .config_values import as_bool, as_int, as_seconds, as_str, as_token, port_range
from .config_webrtc import WebRtcConfig, validate_webrtc
from .errors import BadRequest
from .store.recordings import rules_from_config
from .cluster.settings import CLUSTER_ENV_KEYS, CLUSTER_FLAG_KEYS, add_cluster_flags, check_cluster_keys

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
_SECTIONS = ("tls", "log", "metrics", "limits", "webrtc", "hls")

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


def default_processes(cpus: int | None = None) -> int:
    """Shards (and fronts) when not set: one per CPU, but one of each on a
    box of 1-2 CPUs, where a second pair would cost its fixed memory and
    wake-ups for no throughput the CPUs could give."""
    n = cpus if cpus is not None else (os.cpu_count() or 1)
    return 1 if n <= 2 else n


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
    """`":1554"`, `"127.0.0.1:1554"`, `"[::1]:1554"` -> (host, port)."""
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
    return host or "0.0.0.0", port


# -- loading ---------------------------------------------------------------

def _flatten_file(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Map config.json (ipchub's nesting plus ours) to flat Config fields."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config file: top level must be a JSON object")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in _SECTIONS:
            if not isinstance(v, Mapping):
                raise ConfigError(f"{k}: expected an object")
            out[k] = dict(v)
        elif k in ("routetable", "users"):
            if not isinstance(v, Mapping):
                raise ConfigError(f"{k}: expected an object")
            provider = v.get("provider", "json")
            if provider != "json":
                raise ConfigError(f"{k}.provider: only 'json' is supported, got {provider!r}")
            cfg = v.get("config", {}) or {}
            if not isinstance(cfg, Mapping):
                raise ConfigError(f"{k}.config: expected an object")
            if "file" in cfg:
                out[f"{'routetable' if k == 'routetable' else 'users'}_file"] = cfg["file"]
        elif k == "rtp_ports":
            out["rtp_port_min"], out["rtp_port_max"] = port_range(k, v)
        elif k == "multicast":
            if not isinstance(v, Mapping):
                raise ConfigError("multicast: expected an object")
            if "group" in v:
                out["multicast_group"] = v["group"]
            if "ports" in v:
                out["multicast_port_min"], out["multicast_port_max"] = port_range("multicast.ports", v["ports"])
            if "ttl" in v:
                out["multicast_ttl"] = v["ttl"]
        else:
            out[k] = v
    return out


_ENV_KEYS = {
    "HUB_LISTEN": "listen", "HUB_AUTH": "auth", "HUB_DATA": "data",
    "HUB_SHARDS": "shards", "HUB_FRONTS": "fronts", "HUB_CACHE_GOP": "cache_gop",
    "HUB_HLSFRAGMENT": "hlsfragment", "HUB_HLSPATH": "hlspath",
    "HUB_LOG_LEVEL": "log.level", "HUB_RTP_PORTS": "rtp_ports",
    "HUB_AUTH_SCHEME": "auth_scheme", "HUB_LOG_FORMAT": "log.format",
    "HUB_LOG_ACCESS": "log.access", "HUB_DRAIN_GRACE": "drain_grace",
    "HUB_RTMP_PORT": "rtmp_port", "HUB_FANOUT_WINDOW": "fanout_window",
    "HUB_METRICS_TOKEN": "metrics.token", "HUB_METRICS_MAX_PATHS": "metrics.max_paths",
    "HUB_LIMITS_PLAYERS_PER_STREAM": "limits.players_per_stream",
    "HUB_LIMITS_PLAYERS": "limits.players", "HUB_LIMITS_PUBLISHERS": "limits.publishers",
    "HUB_LIMITS_CONNECTIONS_PER_IP": "limits.connections_per_ip",
    "HUB_WEBRTC_UDP_PORT": "webrtc.udp_port", "HUB_WEBRTC_PUBLIC_ADDRESSES": "webrtc.public_addresses",
    "HUB_WEBRTC_ICE_SERVERS": "webrtc.ice_servers", "HUB_WEBRTC_CONSENT_TIMEOUT": "webrtc.consent_timeout",
    "HUB_HLS_VARIANT": "hls.variant", "HUB_RECORDINGS": "recordings", **CLUSTER_ENV_KEYS,
}

_FIELDS = {f.name for f in dataclasses.fields(Config)}


def _validate(flat: dict[str, Any]) -> Config:
    d = dataclasses.asdict(Config())
    for k, v in flat.items():
        if k == "rtp_ports":
            d["rtp_port_min"], d["rtp_port_max"] = port_range(k, v)
            continue
        if k not in _FIELDS:
            raise ConfigError(f"{k}: unknown configuration key")
        if k in _SECTIONS:
            if not isinstance(v, Mapping):
                raise ConfigError(f"{k}: expected an object")
            base = d[k]
            for sk, sv in v.items():
                if sk not in base:
                    raise ConfigError(f"{k}.{sk}: unknown configuration key")
                base[sk] = sv
            continue
        d[k] = v
    d["listen"] = as_str("listen", d["listen"])
    split_listen(d["listen"])
    for k in ("auth", "cache_gop", "profile"):
        d[k] = as_bool(k, d[k])
    d["hlsfragment"] = as_int("hlsfragment", d["hlsfragment"], 1, 60)
    d["hlspath"] = as_str("hlspath", d["hlspath"])
    d["data"] = as_str("data", d["data"])
    if not d["data"]:
        raise ConfigError("data: must not be empty")
    d["users_file"] = as_str("users.config.file", d["users_file"])
    d["routetable_file"] = as_str("routetable.config.file", d["routetable_file"])
    d["shards"] = as_int("shards", d["shards"], 0, 256)
    d["fronts"] = as_int("fronts", d["fronts"], 0, 256)
    for k in ("rtp_port_min", "rtp_port_max", "multicast_port_min", "multicast_port_max"):
        d[k] = as_int(k, d[k], 1024, 65535)
    if d["rtp_port_max"] - d["rtp_port_min"] < 3:
        raise ConfigError("rtp_ports: range is too small")
    if d["multicast_port_max"] - d["multicast_port_min"] < 1:
        raise ConfigError("multicast.ports: range is too small")
    d["multicast_ttl"] = as_int("multicast.ttl", d["multicast_ttl"], 1, 255)
    try:
        if not ipaddress.ip_address(d["multicast_group"]).is_multicast:
            raise ValueError
    except ValueError:
        raise ConfigError(f"multicast.group: {d['multicast_group']!r} is not a multicast address") from None
    scheme = as_str("auth_scheme", d["auth_scheme"]).lower()
    if scheme not in ("digest", "basic"):
        raise ConfigError(f"auth_scheme: expected 'digest' or 'basic', got {scheme!r}")
    d["auth_scheme"] = scheme
    for k in ("rtsp_session_timeout", "route_idle_timeout"):
        try:
            d[k] = float(d[k])
        except (TypeError, ValueError):
            raise ConfigError(f"{k}: expected a number of seconds") from None
        if d[k] <= 0:
            raise ConfigError(f"{k}: must be positive")
    log = d["log"]
    level = str(log["level"]).upper()
    if level not in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "PANIC", "FATAL"):
        raise ConfigError(f"log.level: unknown level {log['level']!r}")
    log["level"] = level
    log["tofile"] = as_bool("log.tofile", log["tofile"])
    log["access"] = as_bool("log.access", log["access"])
    fmt = as_str("log.format", log["format"]).lower()
    if fmt not in ("text", "json"):
        raise ConfigError(f"log.format: expected 'text' or 'json', got {log['format']!r}")
    log["format"] = fmt
    d["drain_grace"] = as_seconds("drain_grace", d["drain_grace"], 0.0, 3600.0)
    d["rtmp_port"] = as_int("rtmp_port", d["rtmp_port"], 0, 65535)
    d["fanout_window"] = as_int("fanout_window", d["fanout_window"], 0, 1000)
    if d["rtmp_port"] and d["rtmp_port"] == split_listen(d["listen"])[1]:
        raise ConfigError(f"rtmp_port: {d['rtmp_port']} is the listen port, which serves RTMP anyway (use 0)")
    metrics = d["metrics"]
    metrics["token"] = as_token("metrics.token", metrics["token"])
    metrics["max_paths"] = as_int("metrics.max_paths", metrics["max_paths"], 1, 100_000)
    limits = d["limits"]
    for k in limits:
        limits[k] = as_int(f"limits.{k}", limits[k], 0, 100_000_000)
    validate_webrtc(d)
    variant = as_str("hls.variant", d["hls"]["variant"]).lower()
    if variant not in HLS_VARIANTS:
        raise ConfigError(f"hls.variant: expected one of {', '.join(HLS_VARIANTS)}, got {variant!r}")
    d["hls"]["variant"] = variant
    d["recordings"] = as_str("recordings", d["recordings"])
    try:
        d["record"] = rules_from_config(d["record"])
        check_cluster_keys(d)
    except BadRequest as e:
        raise ConfigError(e.message) from None
    return Config.from_dict(d)


# Flags that set a config key: flag destination -> dotted config.json name.
# Values go through the same checks as the file's (no argparse `type=`), so a
# bad one is reported with the key's name.
_FLAG_KEYS = {
    "listen": "listen", "data": "data", "shards": "shards", "fronts": "fronts",
    "auth": "auth", "log_level": "log.level", "log_format": "log.format",
    "log_access": "log.access", "drain_grace": "drain_grace", "rtmp_port": "rtmp_port",
    "fanout_window": "fanout_window",
    "metrics_token": "metrics.token", "metrics_max_paths": "metrics.max_paths",
    "max_players_per_stream": "limits.players_per_stream", "max_players": "limits.players",
    "max_publishers": "limits.publishers", "max_connections_per_ip": "limits.connections_per_ip",
    "webrtc_udp_port": "webrtc.udp_port", "webrtc_public_addresses": "webrtc.public_addresses", **CLUSTER_FLAG_KEYS,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ipchub", description="Streaming media server (RTSP, HTTP-FLV, WS-FLV, HLS)")
    p.add_argument("--config", metavar="FILE", help="config.json in ipchub's format (default: DATA/config.json if present)")
    p.add_argument("--check-config", action="store_true",
                   help="validate the configuration, print it (secrets masked) and exit: 0 if good, 2 if not")
    p.add_argument("--listen", metavar="HOST:PORT", help=f"address to serve RTSP, HTTP and WebSocket on (default :{DEFAULT_PORT})")
    p.add_argument("--data", metavar="DIR", help="data folder: users.json, routetable.json, keys (default ./data)")
    p.add_argument("--shards", type=str, metavar="N",
                   help="stream-owning processes (default: one per CPU; one on 1-2 CPUs)")
    p.add_argument("--fronts", type=str, metavar="N",
                   help="connection-serving processes (default: one per CPU; one on 1-2 CPUs)")
    p.add_argument("--auth", action="store_const", const=True, help="require credentials for media (RTSP Digest, ?token=)")
    p.add_argument("--no-auth", dest="auth", action="store_const", const=False)
    p.add_argument("--log-level", metavar="LEVEL")
    p.add_argument("--log-format", metavar="text|json", help="json: one JSON object per log line (default text)")
    p.add_argument("--log-access", action="store_const", const=True,
                   help="log one line per player and publisher session at its end")
    p.add_argument("--drain-grace", metavar="SECONDS",
                   help="on SIGTERM, how long live players run on before the tree exits (default 10)")
    p.add_argument("--rtmp-port", metavar="PORT",
                   help="RTMP's own port, on the listen host (default 1935; 0: RTMP on the shared port only)")
    p.add_argument("--fanout-window", metavar="MS",
                   help="gather each stream's frames for up to MS milliseconds into one write per player "
                        "(fewer syscalls for big audiences, up to MS more latency; default 0: none)")
    p.add_argument("--metrics-token", metavar="TOKEN",
                   help="bearer token for /metrics (visible in `ps`: prefer HUB_METRICS_TOKEN)")
    p.add_argument("--metrics-max-paths", metavar="N", help="streams with their own byte series (default 100)")
    p.add_argument("--max-players-per-stream", metavar="N", help="0 = unlimited (default)")
    p.add_argument("--max-players", metavar="N", help="players in all; 0 = unlimited (default)")
    p.add_argument("--max-publishers", metavar="N", help="0 = unlimited (default)")
    p.add_argument("--max-connections-per-ip", metavar="N", help="0 = unlimited (default)")
    p.add_argument("--webrtc-udp-port", metavar="PORT",
                   help="WebRTC (WHEP/WHIP) UDP base port: front i uses PORT+i, shard j PORT+fronts+j "
                        "(default 0: any free port)")
    p.add_argument("--webrtc-public-addresses", metavar="IP[,IP...]",
                   help="addresses WebRTC clients reach the UDP ports at (a NAT's or a container host's)")
    add_cluster_flags(p)
    return p


def _set_dotted(flat: dict[str, Any], key: str, value: Any) -> None:
    section, _, name = key.rpartition(".")
    if section:
        flat.setdefault(section, {})[name] = value
    else:
        flat[key] = value


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from defaults, file, environment and flags."""
    return config_from_args(build_parser().parse_args(argv), env)


def _read_secret_file(key: str, filename: str) -> str:
    """`HUB_..._FILE`: a secret from a file (a container or Kubernetes secret
    mount), so it is not in the environment; trailing newlines are dropped."""
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read(4096)
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {filename}: {e.strerror}") from None
    return text.rstrip("\r\n")


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    """`load_config` for flags already parsed by `build_parser()`."""
    env = os.environ if env is None else env
    flat: dict[str, Any] = {}

    data_dir = args.data or env.get("HUB_DATA") or Config.data
    config_file = args.config or env.get("HUB_CONFIG")
    if config_file is None and (Path(data_dir) / "config.json").is_file():
        config_file = str(Path(data_dir) / "config.json")
    if config_file:
        try:
            raw = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"--config: cannot read {config_file}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(f"--config: {config_file} is not valid JSON: {e}") from None
        flat.update(_flatten_file(raw))

    for name, key in _ENV_KEYS.items():
        if name in env:
            _set_dotted(flat, key, env[name])
        elif key in SECRET_KEYS and f"{name}_FILE" in env:
            _set_dotted(flat, key, _read_secret_file(key, env[f"{name}_FILE"]))

    for dest, key in _FLAG_KEYS.items():
        v = getattr(args, dest)
        if v is not None:
            _set_dotted(flat, key, v)
    if "listen" in flat and isinstance(flat["listen"], str) and ":" not in flat["listen"]:
        raise ConfigError(f"listen: expected HOST:PORT, got {flat['listen']!r}")
    return _validate(flat)
