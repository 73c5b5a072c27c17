"""`rtmp_port`: default, file, environment, flag, checks, and the start-up
check that it is free (as the listen address's)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import Config, ConfigError, load_config
from tests.conftest import ROOT, free_port


def test_rtmp_port_default_file_env_flag(tmp_path: Path) -> None:
    assert load_config([], env={}).rtmp_port == 1935 == Config().rtmp_port
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"rtmp_port": 1936}))
    assert load_config(["--config", str(f)], env={}).rtmp_port == 1936
    assert load_config(["--config", str(f)], env={"HUB_RTMP_PORT": "0"}).rtmp_port == 0
    assert load_config(["--config", str(f), "--rtmp-port", "19350"], env={"HUB_RTMP_PORT": "0"}).rtmp_port == 19350
    c = load_config(["--rtmp-port", "2000"], env={})
    assert Config.from_dict(c.to_dict()).rtmp_port == 2000 and c.to_file_dict()["rtmp_port"] == 2000


@pytest.mark.parametrize("argv, env", [
    (["--rtmp-port", "65536"], {}), (["--rtmp-port", "-1"], {}), ([], {"HUB_RTMP_PORT": "rtmp"}),
    (["--listen", "127.0.0.1:2000", "--rtmp-port", "2000"], {}),  # the shared port serves RTMP anyway
])
def test_bad_rtmp_port_names_the_key(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="rtmp_port"):
        load_config(argv, env=env)


def test_a_taken_rtmp_port_stops_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "hub", "--listen", f"127.0.0.1:{free_port()}",
                            "--rtmp-port", str(port), "--data", str(tmp_path)],
                           cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 1 and f"127.0.0.1:{port} is already in use".encode() in r.stderr + r.stdout
