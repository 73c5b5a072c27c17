from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import Config, ConfigError, load_config, split_listen

ROOT = Path(__file__).resolve().parent.parent


def test_defaults() -> None:
    c = load_config([], env={})
    assert (c.host, c.port) == ("0.0.0.0", 1554)
    assert c.auth is False and c.cache_gop is True
    assert c.data == "./data" and c.users_file == "users.json"
    assert c.shard_count >= 1 and c.front_count >= 1


def test_reference_config_file_is_read(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({
        "listen": ":2554", "auth": True, "cache_gop": False, "hlsfragment": 4, "hlspath": "/tmp/x",
        "profile": False, "tls": {"listen": ":443", "cert": "", "key": ""},
        "routetable": {"provider": "json", "config": {"file": "r.json"}},
        "users": {"provider": "json", "config": {"file": "u.json"}},
        "log": {"level": "DEBUG", "tofile": False, "filename": "./logs/ipchub.log",
                "maxsize": 20, "maxdays": 7, "maxbackups": 14, "compress": False},
        "shards": 3, "fronts": 1, "rtp_ports": "20000-20999",
        "multicast": {"group": "239.1.1.1", "ports": "30000-30100", "ttl": 4},
    }))
    c = load_config(["--config", str(f)], env={})
    assert c.port == 2554 and c.auth and not c.cache_gop and c.hlsfragment == 4
    assert c.routetable_file == "r.json" and c.users_file == "u.json"
    assert c.log.level == "DEBUG" and c.tls.listen == ":443"
    assert (c.shards, c.fronts, c.rtp_port_min, c.rtp_port_max) == (3, 1, 20000, 20999)
    assert (c.multicast_group, c.multicast_port_min, c.multicast_ttl) == ("239.1.1.1", 30000, 4)


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"listen": ":2000", "shards": 1, "auth": False}))
    env = {"HUB_LISTEN": "127.0.0.1:3000", "HUB_SHARDS": "2"}
    c = load_config(["--config", str(f), "--shards", "4"], env=env)
    assert c.listen == "127.0.0.1:3000" and c.shards == 4
    c = load_config(["--config", str(f), "--listen", "[::1]:4000", "--auth"], env=env)
    assert (c.host, c.port, c.auth) == ("::1", 4000, True)


def test_config_json_in_data_folder_found(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hlsfragment": 6}')
    assert load_config(["--data", str(tmp_path)], env={}).hlsfragment == 6


@pytest.mark.parametrize("raw, key", [
    ({"listen": "1554"}, "listen"),
    ({"listen": ":99999"}, "listen"),
    ({"auth": "maybe"}, "auth"),
    ({"hlsfragment": 0}, "hlsfragment"),
    ({"shards": "x"}, "shards"),
    ({"nonsense": 1}, "nonsense"),
    ({"log": {"level": "LOUD"}}, "log.level"),
    ({"multicast": {"group": "10.0.0.1"}}, "multicast.group"),
    ({"users": {"provider": "mysql"}}, "users.provider"),
    ({"rtp_ports": "5000"}, "rtp_ports"),
])
def test_bad_values_name_the_key(tmp_path: Path, raw: dict[str, object], key: str) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(["--config", str(f)], env={})


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="fronts"):
        load_config([], env={"HUB_FRONTS": "-1"})


def test_bad_value_exits_2_with_message(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hub", "--listen", "nohost", "--data", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "listen" in r.stderr


def test_unreadable_config_file_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text("{not json")
    r = subprocess.run([sys.executable, "-m", "hub", "--config", str(f)], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "not valid JSON" in r.stderr


def test_split_listen() -> None:
    assert split_listen(":1554") == ("0.0.0.0", 1554)
    assert split_listen("[::1]:80") == ("::1", 80)
    with pytest.raises(ConfigError):
        split_listen("host.example:80")


def test_round_trip_through_child_env() -> None:
    c = load_config(["--shards", "2"], env={})
    assert Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c
