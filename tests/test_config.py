from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import (MASK, RELOADABLE_KEYS, SECRET_KEYS, Config, ConfigError, changed_keys, load_config,
                        restart_needed, split_listen)

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
    ({"log": {"format": "xml"}}, "log.format"),
    ({"log": {"access": "sometimes"}}, "log.access"),
    ({"log": "loud"}, "log"),
    ({"drain_grace": -1}, "drain_grace"),
    ({"drain_grace": "soon"}, "drain_grace"),
    ({"drain_grace": "nan"}, "drain_grace"),
    ({"metrics": {"token": 5}}, "metrics.token"),
    ({"metrics": {"token": "has space"}}, "metrics.token"),
    ({"metrics": {"max_paths": 0}}, "metrics.max_paths"),
    ({"metrics": {"colour": "red"}}, "metrics.colour"),
    ({"metrics": []}, "metrics"),
    ({"limits": {"players": -1}}, "limits.players"),
    ({"limits": {"players_per_stream": "ten"}}, "limits.players_per_stream"),
    ({"limits": {"publishers": True}}, "limits.publishers"),
    ({"limits": {"connections_per_ip": 1.5}}, "limits.connections_per_ip"),
    ({"limits": {"streams": 3}}, "limits.streams"),
    ({"ingest_window": 201}, "ingest_window"),
    ({"ingest_window": -1}, "ingest_window"),
    ({"unwatched_ingest_window": 201}, "unwatched_ingest_window"),
    ({"unwatched_ingest_window": "soon"}, "unwatched_ingest_window"),
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
    # No host: every address, IPv6's too, as Go's ":1554" (ipchub's) is.
    assert Config(listen=":1554").listen_hosts == ("0.0.0.0", "::")
    assert Config(listen="0.0.0.0:1554").listen_hosts == ("0.0.0.0",)
    assert Config(listen="[::]:80").listen_hosts == ("::",) and Config(listen="[::1]:80").listen_hosts == ("::1",)


def test_round_trip_through_child_env() -> None:
    c = load_config(["--shards", "2"], env={})
    assert Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_production_keys_default() -> None:
    c = load_config([], env={})
    assert (c.log.format, c.log.access) == ("text", False)
    assert c.drain_grace == 10.0
    assert (c.metrics.token, c.metrics.max_paths) == (None, 100)
    assert (c.limits.players_per_stream, c.limits.players, c.limits.publishers,
            c.limits.connections_per_ip) == (0, 0, 0, 0)


def test_production_keys_from_file_env_and_flags(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({
        "log": {"level": "INFO", "format": "json", "access": True},
        "drain_grace": 25, "metrics": {"token": "file-token", "max_paths": 7},
        "limits": {"players_per_stream": 10, "players": 1000, "publishers": 50, "connections_per_ip": 20},
    }))
    c = load_config(["--config", str(f)], env={})
    assert (c.log.format, c.log.access, c.drain_grace) == ("json", True, 25.0)
    assert (c.metrics.token, c.metrics.max_paths) == ("file-token", 7)
    assert (c.limits.players_per_stream, c.limits.players, c.limits.publishers,
            c.limits.connections_per_ip) == (10, 1000, 50, 20)

    env = {"HUB_LOG_FORMAT": "text", "HUB_LOG_ACCESS": "off", "HUB_DRAIN_GRACE": "2.5",
           "HUB_METRICS_TOKEN": "env-token", "HUB_METRICS_MAX_PATHS": "9",
           "HUB_LIMITS_PLAYERS_PER_STREAM": "11", "HUB_LIMITS_PLAYERS": "12",
           "HUB_LIMITS_PUBLISHERS": "13", "HUB_LIMITS_CONNECTIONS_PER_IP": "14"}
    c = load_config(["--config", str(f)], env=env)
    assert (c.log.format, c.log.access, c.drain_grace) == ("text", False, 2.5)
    assert (c.metrics.token, c.metrics.max_paths) == ("env-token", 9)
    assert (c.limits.players_per_stream, c.limits.players, c.limits.publishers,
            c.limits.connections_per_ip) == (11, 12, 13, 14)
    assert c.log.level == "INFO"  # the file's other log keys are kept

    flags = ["--config", str(f), "--log-format", "JSON", "--log-access", "--drain-grace", "0",
             "--metrics-token", "flag-token", "--metrics-max-paths", "3", "--max-players-per-stream", "21",
             "--max-players", "22", "--max-publishers", "23", "--max-connections-per-ip", "24"]
    c = load_config(flags, env=env)
    assert (c.log.format, c.log.access, c.drain_grace) == ("json", True, 0.0)
    assert (c.metrics.token, c.metrics.max_paths) == ("flag-token", 3)
    assert (c.limits.players_per_stream, c.limits.players, c.limits.publishers,
            c.limits.connections_per_ip) == (21, 22, 23, 24)


def test_ingest_window_from_file_env_and_flags(tmp_path: Path) -> None:
    assert load_config([], env={}).ingest_window == 0  # read at once unless asked
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"ingest_window": 40}))
    assert load_config(["--config", str(f)], env={}).ingest_window == 40
    assert load_config(["--config", str(f)], env={"HUB_INGEST_WINDOW": "20"}).ingest_window == 20
    assert load_config(["--config", str(f), "--ingest-window", "100"],
                       env={"HUB_INGEST_WINDOW": "20"}).ingest_window == 100


def test_unwatched_ingest_window_from_file_env_and_flags(tmp_path: Path) -> None:
    assert load_config([], env={}).unwatched_ingest_window == 40  # unwatched streams: in windows
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"unwatched_ingest_window": 0}))
    assert load_config(["--config", str(f)], env={}).unwatched_ingest_window == 0
    env = {"HUB_UNWATCHED_INGEST_WINDOW": "20"}
    assert load_config(["--config", str(f)], env=env).unwatched_ingest_window == 20
    assert load_config(["--config", str(f), "--unwatched-ingest-window", "100"], env=env).unwatched_ingest_window == 100


def test_empty_or_null_metrics_token_means_none(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"metrics": {"token": None}}))
    assert load_config(["--config", str(f)], env={}).metrics.token is None
    assert load_config(["--config", str(f)], env={"HUB_METRICS_TOKEN": ""}).metrics.token is None


def test_metrics_token_from_a_secret_file(tmp_path: Path) -> None:
    f = tmp_path / "metrics-token"
    f.write_text("from-a-file\n")
    assert load_config([], env={"HUB_METRICS_TOKEN_FILE": str(f)}).metrics.token == "from-a-file"
    # the variable itself wins over its _FILE form
    env = {"HUB_METRICS_TOKEN_FILE": str(f), "HUB_METRICS_TOKEN": "direct"}
    assert load_config([], env=env).metrics.token == "direct"
    with pytest.raises(ConfigError, match=r"metrics\.token: cannot read"):
        load_config([], env={"HUB_METRICS_TOKEN_FILE": str(tmp_path / "missing")})
    f.write_text("two words\n")
    with pytest.raises(ConfigError, match=r"metrics\.token"):
        load_config([], env={"HUB_METRICS_TOKEN_FILE": str(f)})


@pytest.mark.parametrize("argv, key", [
    (["--log-format", "yaml"], "log.format"),
    (["--drain-grace", "-3"], "drain_grace"),
    (["--metrics-max-paths", "many"], "metrics.max_paths"),
    (["--max-players", "-1"], "limits.players"),
    (["--max-connections-per-ip", "x"], "limits.connections_per_ip"),
])
def test_bad_flag_names_the_key(argv: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(argv, env={})


def test_bad_production_env_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"limits\.publishers"):
        load_config([], env={"HUB_LIMITS_PUBLISHERS": "lots"})
    with pytest.raises(ConfigError, match=r"log\.format"):
        load_config([], env={"HUB_LOG_FORMAT": "xml"})


def _dotted_names(c: Config) -> set[str]:
    out: set[str] = set()

    def walk(d: dict[str, object], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out.add(prefix + k)
    walk(c.to_file_dict(), "")
    return out


def test_reloadable_and_secret_keys_are_real_keys() -> None:
    names = _dotted_names(Config())
    assert RELOADABLE_KEYS <= names and SECRET_KEYS <= names
    assert {"log.level", "auth", "cache_gop", "hlsfragment", "metrics.token",
            "limits.players_per_stream", "limits.players", "limits.publishers",
            "limits.connections_per_ip"} == RELOADABLE_KEYS
    assert not {"listen", "shards", "fronts", "data", "log.format", "metrics.max_paths"} & RELOADABLE_KEYS


def test_changed_keys_and_restart_needed(tmp_path: Path) -> None:
    old = load_config([], env={})
    new = load_config(["--log-level", "debug", "--max-players", "5", "--shards", "3",
                       "--listen", "127.0.0.1:9000"], env={})
    assert changed_keys(old, new) == {"log.level", "limits.players", "shards", "listen"}
    assert restart_needed(old, new) == {"shards", "listen"}
    assert changed_keys(old, old) == set() and restart_needed(old, old) == set()
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"rtp_ports": "20000-20100", "hlsfragment": 5}))
    assert changed_keys(old, load_config(["--config", str(f)], env={})) == {"rtp_ports", "hlsfragment"}


def test_file_shape_round_trips(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({
        "listen": "[::1]:2554", "hlsfragment": 3, "rtp_ports": "20000-20999",
        "multicast": {"group": "239.1.1.1", "ports": "30000-30100", "ttl": 4},
        "users": {"provider": "json", "config": {"file": "u.json"}},
        "log": {"format": "json", "access": True, "level": "DEBUG"},
        "drain_grace": 4, "metrics": {"token": "t0k3n", "max_paths": 5}, "limits": {"players": 9},
    }))
    c = load_config(["--config", str(f)], env={})
    again = tmp_path / "again.json"
    again.write_text(json.dumps(c.to_file_dict()))
    assert load_config(["--config", str(again)], env={}) == c
    masked = c.to_file_dict(mask_secrets=True)
    assert masked["metrics"]["token"] == MASK and c.metrics.token == "t0k3n"


def _check_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "hub", "--check-config", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=30)


def test_check_config_prints_effective_config_masked(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"hlsfragment": 4, "limits": {"players_per_stream": 10},
                             "metrics": {"token": "s3cret-file-token"}}))
    # The address is taken: --check-config must not try to bind it or start anything.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = _check_config("--config", str(f), "--listen", f"127.0.0.1:{port}", "--log-format", "json",
                          "--data", str(tmp_path / "nowhere"), env={"HUB_DRAIN_GRACE": "30"})
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["hlsfragment"] == 4 and shown["limits"]["players_per_stream"] == 10
    assert shown["listen"] == f"127.0.0.1:{port}" and shown["log"]["format"] == "json"
    assert shown["drain_grace"] == 30.0 and shown["metrics"]["token"] == MASK
    assert "s3cret" not in r.stdout + r.stderr
    assert not (tmp_path / "nowhere").exists()  # nothing started, no data folder made


def test_check_config_names_the_bad_key_and_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"limits": {"players": "plenty"}}))
    r = _check_config("--config", str(f))
    assert r.returncode == 2 and r.stdout == ""
    assert "limits.players" in r.stderr
    r = _check_config(env={"HUB_METRICS_MAX_PATHS": "0"})
    assert r.returncode == 2 and "metrics.max_paths" in r.stderr
