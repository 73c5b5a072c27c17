"""The configuration: ipchub's config.json keys, our own keys, `HUB_*`
environment variables and flags, checked once at start (and at a reload).

`model` is its shape (the dataclasses, what a reload compares), `load`
reads and checks the sources, `values` checks one value, `webrtc` is the
`webrtc` section. Everything else imports the names below from here.
"""

from __future__ import annotations

from .load import build_parser, config_from_args, load_config
from .model import (DEFAULT_PORT, HLS_VARIANTS, MASK, NO_IPV6_ERRNOS, RELOADABLE_KEYS, SECRET_KEYS, Config, HlsConfig, LimitsConfig,
                    LogConfig, MetricsConfig, TlsConfig, changed_keys, restart_needed, split_listen)
from .values import ConfigError, default_processes
from .webrtc import WebRtcConfig

__all__ = [
    "DEFAULT_PORT", "HLS_VARIANTS", "MASK", "NO_IPV6_ERRNOS", "RELOADABLE_KEYS", "SECRET_KEYS", "Config", "ConfigError", "HlsConfig",
    "LimitsConfig", "LogConfig", "MetricsConfig", "TlsConfig", "WebRtcConfig", "build_parser", "changed_keys",
    "config_from_args", "default_processes", "load_config", "restart_needed", "split_listen",
]
