"""deploy/k8s/cluster/: validated by kubernetes-validate, and wired together:
stable node names, addresses through the headless Service, Redis, secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from hub.config import Config, load_config
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s" / "cluster"
VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]


def _docs() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc is not None:
                out.append((f, doc))
    return out


def _named(kind: str, name: str) -> dict[str, Any]:
    found = [d for _f, d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def _container(sts: dict[str, Any]) -> dict[str, Any]:
    containers = sts["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def test_manifests_present() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _f, d in _docs())
    assert kinds == [("ConfigMap", "ipchub-cluster-config"), ("Secret", "ipchub-cluster-secrets"),
                     ("Service", "ipchub"), ("Service", "ipchub-nodes"), ("Service", "ipchub-redis"),
                     ("StatefulSet", "ipchub"), ("StatefulSet", "ipchub-redis")]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates(version: str) -> None:
    for f, doc in _docs():
        try:
            checked = kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{f.name} ({doc['kind']}) against {version}: {e.message} at {list(e.path)}")
        assert checked == version.rsplit(".", 1)[0]


def test_validation_catches_a_misspelt_field() -> None:
    sts = json.loads(json.dumps(_named("StatefulSet", "ipchub")))
    sts["spec"]["serviceNames"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, VERSIONS[-1], strict=True)


def _config(tmp_path: Path) -> Config:
    f = tmp_path / "config.json"
    f.write_text(_named("ConfigMap", "ipchub-cluster-config")["data"]["config.json"])
    env = {"HUB_CLUSTER": "redis://:pw@ipchub-redis-0.ipchub-redis:6379/0"}
    return load_config(["--config", str(f), "--node-name", "ipchub-0",
                        "--advertise", "ipchub-0.ipchub-nodes.media.svc.cluster.local:1554"], env=env)


def test_nodes_have_stable_names_and_addresses(tmp_path: Path) -> None:
    sts = _named("StatefulSet", "ipchub")
    headless = _named("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert headless["spec"]["selector"].items() <= labels.items()
    c = _container(sts)
    env = {e["name"]: e["valueFrom"] for e in c["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    args = c["args"]
    assert args[args.index("--node-name") + 1] == "$(POD_NAME)"
    advertise = args[args.index("--advertise") + 1]
    port = _config(tmp_path).port
    assert advertise == f"$(POD_NAME).{headless['metadata']['name']}.$(POD_NAMESPACE).svc.cluster.local:{port}"
    assert headless["spec"]["ports"][0]["port"] == port
    # The config in the ConfigMap is a valid cluster configuration.
    cfg = _config(tmp_path)
    assert cfg.cluster.startswith("redis://") and cfg.log.format == "json"
    assert args[args.index("--config") + 1] == "/etc/ipchub/config.json"


def test_secrets_and_redis_wiring() -> None:
    secret = _named("Secret", "ipchub-cluster-secrets")
    keys = set(secret["stringData"])
    for sts_name in ("ipchub", "ipchub-redis"):
        for e in _container(_named("StatefulSet", sts_name))["env"]:
            ref = e["valueFrom"].get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == "ipchub-cluster-secrets" and ref["key"] in keys
    env = {e["name"]: e["valueFrom"] for e in _container(_named("StatefulSet", "ipchub"))["env"]}
    assert env["HUB_CLUSTER"]["secretKeyRef"]["key"] == "cluster-url"
    url = secret["stringData"]["cluster-url"]
    redis = _named("StatefulSet", "ipchub-redis")
    svc = _named("Service", redis["spec"]["serviceName"])
    assert f"@ipchub-redis-0.{svc['metadata']['name']}:6379/" in url
    assert f":{secret['stringData']['redis-password']}@" in url
    args = _container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] in {
        m["name"] for m in _container(redis)["volumeMounts"]}


def test_players_service_is_l4_and_sticky() -> None:
    svc = _named("Service", "ipchub")
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["ports"] == [{"name": "media", "port": 1554, "targetPort": "media", "protocol": "TCP"}]
    sts = _named("StatefulSet", "ipchub")
    assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    text = (K8S / "service.yaml").read_text()
    assert "L4" in text and "HLS" in text and "cookie" in text


def test_probes_and_grace_as_the_single_node_manifests(tmp_path: Path) -> None:
    sts = _named("StatefulSet", "ipchub")
    c = _container(sts)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    grace = _config(tmp_path).drain_grace
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= \
        c["lifecycle"]["preStop"]["sleep"]["seconds"] + grace + 5
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"/etc/ipchub", "/data", "/tmp", "/dev/shm"}
