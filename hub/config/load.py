"""Loading the configuration: ipchub's config.json keys, our own keys,
`HUB_*` environment variables and command-line flags, each value checked
once (`hub.config.values`), into a `Config` (`hub.config.model`).

Precedence, lowest first: built-in defaults, the config file, `HUB_*`
environment variables, command-line flags. A bad value stops the start
with a message naming the key (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..cluster.settings import CLUSTER_ENV_KEYS, CLUSTER_FLAG_KEYS, add_cluster_flags, check_cluster_keys
from ..errors import BadRequest
from ..store.recordings import rules_from_config
from .model import DEFAULT_PORT, HLS_VARIANTS, SECRET_KEYS, SECTIONS, Config, split_listen
from .values import ConfigError, as_bool, as_int, as_seconds, as_str, as_token, port_range
from .webrtc import validate_webrtc

# -- loading ---------------------------------------------------------------

def _flatten_file(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Map config.json (ipchub's nesting plus ours) to flat Config fields."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config file: top level must be a JSON object")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in SECTIONS:
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
    "HUB_RTMP_PORT": "rtmp_port", "HUB_FANOUT_WINDOW": "fanout_window", "HUB_INGEST_WINDOW": "ingest_window",
    "HUB_UNWATCHED_INGEST_WINDOW": "unwatched_ingest_window",
    "HUB_MEMORY_MERGE": "memory_merge",
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
        if k in SECTIONS:
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
    d["ingest_window"] = as_int("ingest_window", d["ingest_window"], 0, 200)
    d["unwatched_ingest_window"] = as_int("unwatched_ingest_window", d["unwatched_ingest_window"], 0, 200)
    d["memory_merge"] = as_bool("memory_merge", d["memory_merge"])
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
    "fanout_window": "fanout_window", "ingest_window": "ingest_window",
    "unwatched_ingest_window": "unwatched_ingest_window", "memory_merge": "memory_merge",
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
    p.add_argument("--ingest-window", metavar="MS",
                   help="let each live TCP source's bytes gather for up to MS milliseconds between reads "
                        "(far fewer reads and wake-ups per stream, up to MS more latency; default 0: read at once)")
    p.add_argument("--unwatched-ingest-window", metavar="MS",
                   help="the same for a source whose stream nobody needs at once (no player, LL-HLS player "
                        "or relay; HLS segments and recordings take windows too), read at once again as soon "
                        "as someone does (default 40; 0: read at once)")
    p.add_argument("--memory-merge", action="store_const", const=True,
                   help="mark the tree's memory mergeable by the kernel's same-page merging (KSM, Linux 6.4+; "
                        "the machine must run it: /sys/kernel/mm/ksm/run); read at start")
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
