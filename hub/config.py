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

DEFAULT_PORT = 1554


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the key."""


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
    shards: int = 0  # 0 = one per CPU
    fronts: int = 0  # 0 = one per CPU
    rtp_port_min: int = 16000
    rtp_port_max: int = 19999
    multicast_group: str = "235.0.0.1"
    multicast_port_min: int = 16666
    multicast_port_max: int = 17665
    multicast_ttl: int = 127
    rtsp_session_timeout: float = 60.0
    auth_scheme: str = "digest"  # "digest" or "basic", for RTSP
    route_idle_timeout: float = 300.0

    # -- derived -------------------------------------------------------
    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def shard_count(self) -> int:
        return self.shards or (os.cpu_count() or 1)

    @property
    def front_count(self) -> int:
        return self.fronts or (os.cpu_count() or 1)

    def data_path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else Path(self.data) / p

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        d = dict(d)
        d["tls"] = TlsConfig(**d.get("tls", {}))
        d["log"] = LogConfig(**d.get("log", {}))
        return cls(**d)


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

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False}


def _as_bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[v.strip().lower()]
    raise ConfigError(f"{key}: expected true or false, got {v!r}")


def _as_int(key: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool):
        raise ConfigError(f"{key}: expected a number, got {v!r}")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {v!r}") from None
    if not lo <= n <= hi:
        raise ConfigError(f"{key}: {n} is out of range {lo}..{hi}")
    return n


def _as_str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{key}: expected a string, got {v!r}")
    return v


def _port_range(key: str, v: Any) -> tuple[int, int]:
    text = str(v)
    lo_t, sep, hi_t = text.partition("-")
    if not sep:
        raise ConfigError(f"{key}: expected MIN-MAX, got {v!r}")
    lo = _as_int(key, lo_t, 1024, 65535)
    hi = _as_int(key, hi_t, 1024, 65535)
    if hi - lo < 3:
        raise ConfigError(f"{key}: range {lo}-{hi} is too small")
    return lo, hi


def _flatten_file(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Map config.json (ipchub's nesting plus ours) to flat Config fields."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config file: top level must be a JSON object")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in ("tls", "log"):
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
            out["rtp_port_min"], out["rtp_port_max"] = _port_range(k, v)
        elif k == "multicast":
            if not isinstance(v, Mapping):
                raise ConfigError("multicast: expected an object")
            if "group" in v:
                out["multicast_group"] = v["group"]
            if "ports" in v:
                out["multicast_port_min"], out["multicast_port_max"] = _port_range("multicast.ports", v["ports"])
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
    "HUB_AUTH_SCHEME": "auth_scheme",
}

_FIELDS = {f.name for f in dataclasses.fields(Config)}


def _validate(flat: dict[str, Any]) -> Config:
    d = dataclasses.asdict(Config())
    for k, v in flat.items():
        if k == "rtp_ports":
            d["rtp_port_min"], d["rtp_port_max"] = _port_range(k, v)
            continue
        if k not in _FIELDS:
            raise ConfigError(f"{k}: unknown configuration key")
        if k in ("tls", "log"):
            base = d[k]
            for sk, sv in v.items():
                if sk not in base:
                    raise ConfigError(f"{k}.{sk}: unknown configuration key")
                base[sk] = sv
            continue
        d[k] = v
    d["listen"] = _as_str("listen", d["listen"])
    split_listen(d["listen"])
    for k in ("auth", "cache_gop", "profile"):
        d[k] = _as_bool(k, d[k])
    d["hlsfragment"] = _as_int("hlsfragment", d["hlsfragment"], 1, 60)
    d["hlspath"] = _as_str("hlspath", d["hlspath"])
    d["data"] = _as_str("data", d["data"])
    if not d["data"]:
        raise ConfigError("data: must not be empty")
    d["users_file"] = _as_str("users.config.file", d["users_file"])
    d["routetable_file"] = _as_str("routetable.config.file", d["routetable_file"])
    d["shards"] = _as_int("shards", d["shards"], 0, 256)
    d["fronts"] = _as_int("fronts", d["fronts"], 0, 256)
    for k in ("rtp_port_min", "rtp_port_max", "multicast_port_min", "multicast_port_max"):
        d[k] = _as_int(k, d[k], 1024, 65535)
    if d["rtp_port_max"] - d["rtp_port_min"] < 3:
        raise ConfigError("rtp_ports: range is too small")
    if d["multicast_port_max"] - d["multicast_port_min"] < 1:
        raise ConfigError("multicast.ports: range is too small")
    d["multicast_ttl"] = _as_int("multicast.ttl", d["multicast_ttl"], 1, 255)
    try:
        if not ipaddress.ip_address(d["multicast_group"]).is_multicast:
            raise ValueError
    except ValueError:
        raise ConfigError(f"multicast.group: {d['multicast_group']!r} is not a multicast address") from None
    scheme = _as_str("auth_scheme", d["auth_scheme"]).lower()
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
    log["tofile"] = _as_bool("log.tofile", log["tofile"])
    return Config.from_dict(d)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ipchub", description="Streaming media server (RTSP, HTTP-FLV, WS-FLV, HLS)")
    p.add_argument("--config", metavar="FILE", help="config.json in ipchub's format (default: DATA/config.json if present)")
    p.add_argument("--listen", metavar="HOST:PORT", help=f"address to serve RTSP, HTTP and WebSocket on (default :{DEFAULT_PORT})")
    p.add_argument("--data", metavar="DIR", help="data folder: users.json, routetable.json, keys (default ./data)")
    p.add_argument("--shards", type=str, metavar="N", help="stream-owning processes (default: one per CPU)")
    p.add_argument("--fronts", type=str, metavar="N", help="connection-serving processes (default: one per CPU)")
    p.add_argument("--auth", action="store_const", const=True, help="require credentials for media (RTSP Digest, ?token=)")
    p.add_argument("--no-auth", dest="auth", action="store_const", const=False)
    p.add_argument("--log-level", metavar="LEVEL")
    return p


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from defaults, file, environment and flags."""
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
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
            if key.startswith("log."):
                flat.setdefault("log", {})[key[4:]] = env[name]
            else:
                flat[key] = env[name]

    for key in ("listen", "data", "shards", "fronts", "auth"):
        v = getattr(args, key)
        if v is not None:
            flat[key] = v
    if args.log_level is not None:
        flat.setdefault("log", {})["level"] = args.log_level
    if "listen" in flat and isinstance(flat["listen"], str) and ":" not in flat["listen"]:
        raise ConfigError(f"listen: expected HOST:PORT, got {flat['listen']!r}")
    return _validate(flat)
