"""The cluster's configuration keys, and how every node's streams are merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.api.rest.cluster import merge
from hub.cluster.settings import advertise_address, mask_url_password, node_name
from hub.config import Config, ConfigError, load_config


def test_cluster_keys_from_flags_env_and_file() -> None:
    c = load_config(["--cluster", "redis://10.0.0.5:6379/2", "--node-name", "hub-0",
                     "--advertise", "hub-0.hub.media.svc:1554"], env={})
    assert (c.cluster, c.node_name, c.advertise) == ("redis://10.0.0.5:6379/2", "hub-0", "hub-0.hub.media.svc:1554")
    c = load_config([], env={"HUB_CLUSTER": "redis://r:6379/0", "HUB_NODE_NAME": "n1", "HUB_ADVERTISE": "[::1]:1554"})
    assert (c.cluster, c.node_name, c.advertise) == ("redis://r:6379/0", "n1", "[::1]:1554")
    assert Config().cluster == "" and load_config([], env={}).cluster == ""


@pytest.mark.parametrize("flag, value, key", [
    ("--cluster", "http://r:6379", "cluster"),
    ("--cluster", "r:6379", "cluster"),
    ("--node-name", "a b", "node_name"),
    ("--node-name", ".x", "node_name"),
    ("--advertise", "0.0.0.0:1554", "advertise"),
    ("--advertise", "host", "advertise"),
    ("--advertise", "host:99999", "advertise"),
])
def test_bad_cluster_keys_name_the_key(flag: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}:"):
        load_config([flag, value], env={})


def test_the_redis_url_is_a_secret(tmp_path: Path) -> None:
    c = load_config(["--cluster", "redis://:s3cret@r:6379/0"], env={})
    assert c.to_file_dict(mask_secrets=True)["cluster"] == "********"
    assert c.to_file_dict()["cluster"] == "redis://:s3cret@r:6379/0"
    secret = tmp_path / "url"
    secret.write_text("redis://:pw@r:6379/1\n")
    assert load_config([], env={"HUB_CLUSTER_FILE": str(secret)}).cluster == "redis://:pw@r:6379/1"
    assert mask_url_password("redis://r:6379/0") == "redis://r:6379/0"
    assert mask_url_password("rediss://user:pw@r/0") == "rediss://user:********@r/0"


def test_defaults_name_and_address() -> None:
    assert node_name("given") == "given"
    assert node_name("")  # the host's name
    assert advertise_address("x:1", "0.0.0.0", 1554) == "x:1"
    assert advertise_address("", "10.1.2.3", 1554) == "10.1.2.3:1554"
    assert advertise_address("", "::1", 1554) == "[::1]:1554"
    assert advertise_address("", "0.0.0.0", 1554).endswith(":1554")


def _stream(path: str, start: str, **extra: object) -> dict[str, object]:
    return {"path": path, "start_on": start, "addr": "x", "size": 1, **extra}


def test_merge_lists_each_path_once_under_its_owner() -> None:
    parts = [
        {"node": "b", "streams": [_stream("/a", "t1", relay="a"), _stream("/b", "t2")],
         "consumers": {"/a": [{"id": 256}], "/b": [{"id": 512}]}},
        {"node": "a", "streams": [_stream("/a", "t0")], "consumers": {"/a": [{"id": 256}, {"id": 768}]}},
        {"node": "c", "streams": [_stream("/c", "t3", relay="z")], "consumers": {}},
    ]
    streams, consumers = merge(parts)
    by_path = {s["path"]: s for s in streams}
    assert sorted(by_path) == ["/a", "/b", "/c"]
    assert (by_path["/a"]["node"], by_path["/a"]["start_on"]) == ("a", "t0")
    assert by_path["/b"]["node"] == "b"
    # z did not answer: c's relay stands in, under z's name, without its marker.
    assert by_path["/c"]["node"] == "z" and "relay" not in by_path["/c"]
    assert consumers["/a"] == [{"id": 256, "node": "b"}, {"id": 256, "node": "a"}, {"id": 768, "node": "a"}]


def test_merge_two_owners_keeps_the_newer_publisher() -> None:
    streams, _ = merge([{"node": "a", "streams": [_stream("/x", "2026-01-01T00:00:01Z")], "consumers": {}},
                        {"node": "b", "streams": [_stream("/x", "2026-01-01T00:00:02Z")], "consumers": {}}])
    assert [(s["path"], s["node"]) for s in streams] == [("/x", "b")]
