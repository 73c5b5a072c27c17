"""deploy/Dockerfile, compose.yaml and prometheus.yml, checked without a Docker engine."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from hub.config import Config, load_config
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def _instructions() -> list[dict[str, Any]]:
    return [i for i in DockerfileParser(path=str(DEPLOY / "Dockerfile")).structure if i["instruction"] != "COMMENT"]


def _stages() -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(base image, stage name, instructions) per FROM."""
    stages: list[tuple[str, str, list[dict[str, Any]]]] = []
    for ins in _instructions():
        if ins["instruction"] == "FROM":
            words = ins["value"].split()
            assert len(words) == 3 and words[1].upper() == "AS", ins["value"]
            stages.append((words[0], words[2], []))
        else:
            assert stages, "instruction before FROM"
            stages[-1][2].append(ins)
    return stages


def _values(instrs: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in instrs if i["instruction"] == name]


def test_dockerfile_stages() -> None:
    stages = _stages()
    assert [name for _b, name, _i in stages] == ["webdeps", "build", "runtime"]
    node_base, _n, node = stages[0]
    assert node_base.startswith("node:")
    assert any(v.startswith("package.json package-lock.json") for v in _values(node, "COPY"))
    assert any("npm ci" in v for v in _values(node, "RUN"))
    for base, _n, _i in stages[1:]:
        assert base.startswith("python:3.11-slim"), base


def test_dockerfile_copies_what_exists_and_installs_the_script() -> None:
    for base, _name, instrs in _stages():
        for v in _values(instrs, "COPY"):
            if v.startswith("--from="):
                continue
            for src in shlex.split(v)[:-1]:
                assert (ROOT / src).exists(), src
    # Dockerfile.dockerignore excludes everything but what the stages copy
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("**")] == "**"
    for base, _name, instrs in _stages():
        for v in _values(instrs, "COPY"):
            if not v.startswith("--from="):
                for src in shlex.split(v)[:-1]:
                    assert f"!{src}" in ignore or f"!{src}/" in ignore, src
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entry = json.loads(_values(_stages()[-1][2], "ENTRYPOINT")[0])
    assert entry[0] in scripts


def test_dockerfile_runtime_stage() -> None:
    _base, _name, rt = _stages()[-1]
    user = _values(rt, "USER")[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric: Kubernetes' runAsNonRoot checks it
    assert _values(rt, "EXPOSE") == ["1554"]
    assert _values(rt, "VOLUME") == ["/data"]
    assert _values(rt, "STOPSIGNAL") == ["SIGTERM"]
    health = _values(rt, "HEALTHCHECK")
    assert len(health) == 1 and "http://127.0.0.1:1554/healthz" in health[0]
    assert "CMD" in health[0].split()
    # the players from the node stage land where the server looks for them
    copies = [shlex.split(v) for v in _values(rt, "COPY") if v.startswith("--from=webdeps")]
    assert len(copies) == 1 and copies[0][1].endswith("/node_modules")
    env = " ".join(_values(rt, "ENV"))
    assert f"HUB_NODE_MODULES={copies[0][2]}" in env
    assert "HUB_DATA=/data" in env and "HUB_LISTEN=:1554" in env
    assert Config().port == 1554


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _prometheus() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert isinstance(data, dict)
    return data


def _duration(text: str) -> float:
    assert text.endswith("s") and text[:-1].isdigit(), text
    return float(text[:-1])


def test_compose_services_ports_volumes() -> None:
    c = _compose()
    assert set(c["services"]) == {"ipchub", "prometheus"}
    hub = c["services"]["ipchub"]
    assert hub["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / hub["build"]["context"] / hub["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert "1554:1554" in hub["ports"]
    assert "ipchub-data:/data" in hub["volumes"] and "ipchub-data" in c["volumes"]
    assert hub["shm_size"] == "1gb"
    assert hub["ulimits"]["nofile"]["hard"] >= 65536
    assert hub["stop_signal"] == "SIGTERM"
    grace = float(hub["environment"].get("HUB_DRAIN_GRACE", Config().drain_grace))
    assert _duration(hub["stop_grace_period"]) >= grace + 5
    # every HUB_* setting given to the server is one it accepts
    env = {k: v for k, v in hub["environment"].items()
           if k.startswith("HUB_") and k not in ("HUB_ADMIN_PASSWORD", "HUB_METRICS_TOKEN_FILE")}
    load_config([], env=env)

    prom = c["services"]["prometheus"]
    assert prom["depends_on"] == ["ipchub"]
    assert any(p.endswith(":9090:9090") for p in prom["ports"])
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"]}
    host_file = mounted[config_flag.split("=", 1)[1]]
    assert (DEPLOY / host_file).resolve() == DEPLOY / "prometheus.yml"


def test_scrape_target_and_token_wiring() -> None:
    c = _compose()
    hub, prom = c["services"]["ipchub"], c["services"]["prometheus"]
    jobs = _prometheus()["scrape_configs"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job["metrics_path"] == "/metrics"
    target = job["static_configs"][0]["targets"][0]
    host, port = target.split(":")
    assert host == "ipchub" and host in c["services"]
    assert f"{port}:{port}" in hub["ports"] or any(p.endswith(f":{port}") for p in hub["ports"])
    # one secret, mounted in both: the server reads it by HUB_METRICS_TOKEN_FILE,
    # Prometheus by credentials_file
    assert hub["secrets"] == prom["secrets"] == ["metrics_token"]
    secret_path = "/run/secrets/metrics_token"
    assert hub["environment"]["HUB_METRICS_TOKEN_FILE"] == secret_path
    assert "HUB_METRICS_TOKEN" not in hub["environment"]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": secret_path}
    assert c["secrets"]["metrics_token"]["file"] == "./metrics-token"
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert "metrics-token" in ignored  # the operator's token is never committed


def test_server_reads_the_compose_secret_as_prometheus_does(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics_token"
    token_file.write_text("0123456789abcdef0123456789abcdef\n")  # as `openssl rand -hex 16 >` writes it
    c = load_config([], env={"HUB_METRICS_TOKEN_FILE": str(token_file)})
    assert c.metrics.token == "0123456789abcdef0123456789abcdef"  # Prometheus trims the newline too


def test_promtool_accepts_prometheus_yml(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make sysdeps` installs Debian's prometheus"
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    text = (DEPLOY / "prometheus.yml").read_text()
    assert text.count("/run/secrets/metrics_token") == 1
    copy = tmp_path / "prometheus.yml"
    copy.write_text(text.replace("/run/secrets/metrics_token", str(token)))
    r = subprocess.run([promtool, "check", "config", str(copy)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout + r.stderr, r.stdout + r.stderr
