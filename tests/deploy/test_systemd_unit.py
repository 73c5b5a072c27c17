"""deploy/systemd/ipchub.service: `systemd-analyze verify` and what it must say."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from hub.config import Config
from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "systemd" / "ipchub.service"
INSTALLED_BINARY = "/opt/ipchub/bin/ipchub"


def _venv_ipchub() -> Path:
    exe = Path(sys.executable).parent / "ipchub"
    assert exe.is_file(), f"{exe} missing: install the package (pip install -e .)"
    return exe


def _directives(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit (comments skipped); keys repeat."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0}
    for suffix, mul in units.items():
        if value.endswith(suffix) and value[: -len(suffix)].isdigit():
            return int(value[: -len(suffix)]) * mul
    return float(value)


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: `make sysdeps` installs Debian's systemd"
    # verify checks that ExecStart's binary exists: point it at this venv's
    # ipchub instead of /opt/ipchub; nothing else changes.
    text = UNIT.read_text()
    assert text.count(INSTALLED_BINARY) == 2
    copy = tmp_path / "ipchub.service"
    copy.write_text(text.replace(INSTALLED_BINARY, str(_venv_ipchub())))
    r = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r.stderr + r.stdout


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze
    copy = tmp_path / "ipchub.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(_venv_ipchub()))
                    .replace("ProtectSystem=strict", "ProtectSystm=strict"))
    r = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60)
    assert "ProtectSystm" in r.stderr


def test_unit_is_hardened_and_drains() -> None:
    d = _directives(UNIT.read_text())
    one = {k: v[-1] for k, v in d.items()}
    assert one["DynamicUser"] == "yes"
    assert one["ProtectSystem"] == "strict" and one["ProtectHome"] == "yes"
    assert one["PrivateTmp"] == "yes" and one["NoNewPrivileges"] == "yes"
    assert one["StateDirectory"] == "ipchub" and one["RuntimeDirectory"] == "ipchub"
    assert one["LimitNOFILE"] == "1048576"
    assert one["Restart"] == "on-failure"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["KillSignal"] == "SIGTERM"
    # SIGTERM to the supervisor alone, or every child would drop its players at once
    assert one["KillMode"] == "mixed"
    assert _seconds(one["TimeoutStopSec"]) >= Config().drain_grace + 5
    # no capability unless the operator uncomments the <1024 lines
    assert one["CapabilityBoundingSet"] == "" and "AmbientCapabilities" not in d
    assert "#AmbientCapabilities=CAP_NET_BIND_SERVICE" in UNIT.read_text()
    # the state folder is the --data folder
    argv = shlex.split(one["ExecStart"])
    assert argv[0] == INSTALLED_BINARY
    assert argv[argv.index("--data") + 1] == f"/var/lib/{one['StateDirectory']}"
    pre = shlex.split(one["ExecStartPre"])
    assert pre[1] == "--check-config" and pre[2:] == argv[1:]


def test_unit_command_lines_are_valid_for_ipchub(tmp_path: Path) -> None:
    """ExecStartPre, run as the install steps in deploy/README.md set it up:
    the config file made by `ipchub --check-config > /etc/ipchub/config.json`."""
    exe = str(_venv_ipchub())
    made = subprocess.run([exe, "--check-config"], capture_output=True, text=True, timeout=30,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert made.returncode == 0, made.stderr
    config = tmp_path / "config.json"
    config.write_text(made.stdout)
    pre = shlex.split(_directives(UNIT.read_text())["ExecStartPre"][-1])
    pre = [exe if a == INSTALLED_BINARY else str(config) if a == "/etc/ipchub/config.json" else a for a in pre]
    r = subprocess.run(pre, capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"] == "/var/lib/ipchub"
