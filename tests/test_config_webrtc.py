"""The webrtc section of the configuration: file, environment, flags, checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub.config import Config, ConfigError, load_config


def test_defaults() -> None:
    w = load_config([], env={}).webrtc
    assert (w.udp_port, w.public_addresses, w.ice_servers, w.consent_timeout) == (0, (), (), 30.0)


def test_file_env_and_flags(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"fronts": 2, "shards": 2, "webrtc": {
        "udp_port": 8189, "public_addresses": ["203.0.113.7", "2001:db8::1"],
        "ice_servers": ["stun:stun.example.net:3478"], "consent_timeout": 20}}))
    c = load_config(["--config", str(f)], env={})
    assert c.webrtc.udp_port == 8189 and c.webrtc.consent_timeout == 20.0
    assert c.webrtc.public_addresses == ("203.0.113.7", "2001:db8::1")
    assert c.webrtc.ice_servers == ("stun:stun.example.net:3478",)
    env = {"HUB_WEBRTC_UDP_PORT": "9000", "HUB_WEBRTC_PUBLIC_ADDRESSES": "198.51.100.1, 198.51.100.2",
           "HUB_WEBRTC_ICE_SERVERS": "stun:a.example:3478,turn:b.example:3478"}
    c = load_config(["--config", str(f)], env=env)
    assert c.webrtc.udp_port == 9000 and c.webrtc.public_addresses == ("198.51.100.1", "198.51.100.2")
    assert c.webrtc.ice_servers == ("stun:a.example:3478", "turn:b.example:3478")
    c = load_config(["--config", str(f), "--webrtc-udp-port", "9100", "--webrtc-public-addresses", "192.0.2.9"],
                    env=env)
    assert (c.webrtc.udp_port, c.webrtc.public_addresses) == (9100, ("192.0.2.9",))
    # The effective configuration written as a file loads back the same.
    again = tmp_path / "again.json"
    again.write_text(json.dumps(c.to_file_dict()))
    assert load_config(["--config", str(again)], env={}) == c
    assert Config.from_dict(c.to_dict()) == c  # as the children get it


@pytest.mark.parametrize("raw, key", [
    ({"udp_port": "x"}, "webrtc.udp_port"),
    ({"udp_port": 80}, "webrtc.udp_port"),
    ({"udp_port": 65535}, "webrtc.udp_port"),  # no room for the other processes' ports
    ({"public_addresses": "not-an-ip"}, "webrtc.public_addresses"),
    ({"public_addresses": ["0.0.0.0"]}, "webrtc.public_addresses"),
    ({"public_addresses": [1]}, "webrtc.public_addresses"),
    ({"public_addresses": [f"192.0.2.{i}" for i in range(9)]}, "webrtc.public_addresses"),
    ({"ice_servers": ["http://x"]}, "webrtc.ice_servers"),
    ({"ice_servers": ["stun:a b"]}, "webrtc.ice_servers"),
    ({"consent_timeout": 0}, "webrtc.consent_timeout"),
    ({"consent_timeout": 31}, "webrtc.consent_timeout"),
    ({"colour": 1}, "webrtc.colour"),
])
def test_bad_values_name_the_key(tmp_path: Path, raw: dict[str, Any], key: str) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"fronts": 2, "shards": 2, "webrtc": raw}))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(["--config", str(f)], env={})


def test_the_port_check_counts_the_processes_that_will_run(tmp_path: Path) -> None:
    # Shards and fronts not set: as many as the box gets by default (one of
    # each on 1-2 CPUs), so the last ports of the range are usable there.
    from hub.config import default_processes

    f = tmp_path / "config.json"
    top = 65536 - 2 * default_processes()
    f.write_text(json.dumps({"webrtc": {"udp_port": top}}))
    assert load_config(["--config", str(f)], env={}).webrtc.udp_port == top
    f.write_text(json.dumps({"webrtc": {"udp_port": top + 1}}))
    with pytest.raises(ConfigError, match=r"webrtc\.udp_port"):
        load_config(["--config", str(f)], env={})
