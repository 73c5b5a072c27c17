"""deploy/k8s/: every manifest validated by kubernetes-validate, and wired together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from hub.config import Config, load_config
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
# preStop `sleep` needs 1.30; the newest the package knows is checked too.
VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]


def _docs() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc is not None:
                out.append((f, doc))
    return out


def _one(kind: str) -> dict[str, Any]:
    found = [d for _f, d in _docs() if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_manifests_present() -> None:
    kinds = sorted(d["kind"] for _f, d in _docs())
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret", "Service"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates(version: str) -> None:
    for f, doc in _docs():
        try:
            checked = kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{f.name} ({doc['kind']}) against {version}: {e.message} at {list(e.path)}")
        assert checked == version.rsplit(".", 1)[0]  # that version's own schemas


def test_validation_catches_a_misspelt_field() -> None:
    dep = json.loads(json.dumps(_one("Deployment")))
    dep["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, VERSIONS[-1], strict=True)


def _container() -> dict[str, Any]:
    containers = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def _configmap_config(tmp_path: Path) -> Config:
    cm = _one("ConfigMap")
    f = tmp_path / "config.json"
    f.write_text(cm["data"]["config.json"])
    return load_config(["--config", str(f)], env={})


def test_configmap_holds_a_valid_config(tmp_path: Path) -> None:
    c = _configmap_config(tmp_path)
    assert c.port == 1554 and c.log.format == "json"
    assert c.metrics.token is None  # the token comes from the Secret, not the ConfigMap


def test_deployment_probes_grace_and_rollout(tmp_path: Path) -> None:
    dep = _one("Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = _container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in port_names
    assert port_names == {"media": _configmap_config(tmp_path).port}
    grace = _configmap_config(tmp_path).drain_grace
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 5
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert "memory" in c["resources"]["limits"] and "cpu" in c["resources"]["requests"]


def test_deployment_security_and_volumes() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    c = _container()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    # with a read-only root, everything the server writes has a volume
    assert set(mounts) == {"/etc/ipchub", "/data", "/tmp", "/dev/shm"}
    shm = volumes[mounts["/dev/shm"]]["emptyDir"]
    assert shm["medium"] == "Memory"
    size = shm["sizeLimit"]
    assert size.endswith("Gi") and int(size[:-2]) >= 1  # ~8 MiB of ring per live stream
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == _one("PersistentVolumeClaim")["metadata"]["name"]
    cm = volumes[mounts["/etc/ipchub"]]["configMap"]["name"]
    assert cm == _one("ConfigMap")["metadata"]["name"]
    args = c["args"]
    assert args[args.index("--data") + 1] == "/data"
    config_path = args[args.index("--config") + 1]
    assert config_path == "/etc/ipchub/" + next(iter(_one("ConfigMap")["data"]))


def test_secret_wiring() -> None:
    secret = _one("Secret")
    keys = set(secret["stringData"])
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in _container()["env"]}
    assert set(env) == {"HUB_ADMIN_PASSWORD", "HUB_METRICS_TOKEN"}
    for ref in env.values():
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys


def test_service_exposes_the_one_port(tmp_path: Path) -> None:
    svc = _one("Service")
    assert svc["spec"]["selector"] == _one("Deployment")["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"name": "media", "port": 1554, "targetPort": "media", "protocol": "TCP"}]
    text = (K8S / "service.yaml").read_text()
    assert "hostNetwork" in text and "UDP" in text and "ulticast" in text
