"""`/healthz`, `/readyz` and who may read `/metrics`."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from starlette.requests import Request

from hub.config import Config, MetricsConfig
from hub.errors import Forbidden, Unauthorized
from hub.api.rest.ops import check_metrics_access
from tests.conftest import HubServer
from tests.ops.clients import metrics
from tests.ops.conftest import child_named, wait_until

TOKEN = "abc.DEF-123"


def get(srv: HubServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    req = urllib.request.Request(srv.base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


@pytest.mark.e2e
def test_health_readiness_and_a_child_down(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "2", "--fronts", "2")
    status, body, ctype = get(srv, "/healthz")
    assert status == 200 and ctype.startswith("application/json")
    assert json.loads(body)["status"] == "ok"
    # Ready once every front listens (a child answers the supervisor before it serves).
    wait_until(lambda: get(srv, "/readyz")[0] == 200, 10, "ready", srv)
    status, body, _ = get(srv, "/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "draining": False,
                                "children": {"shard-0": True, "shard-1": True, "front-0": True, "front-1": True}}

    child_named(srv, "shard-1").send_signal(signal.SIGKILL)
    seen: list[tuple[int, Any]] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(s == 503 for s, _ in seen):
        status, body, _ = get(srv, "/readyz")
        seen.append((status, json.loads(body)))
        time.sleep(0.02)
    not_ready = [b for s, b in seen if s == 503]
    assert not_ready and "shard-1" in not_ready[0]["error"], seen[-3:]
    assert get(srv, "/healthz")[0] == 200  # the tree still answers
    wait_until(lambda: get(srv, "/readyz")[0] == 200, 15, "ready again", srv)


@pytest.mark.e2e
def test_metrics_token(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", env={"HUB_METRICS_TOKEN": TOKEN})
    assert get(srv, "/metrics")[0] == 401
    assert get(srv, "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    status, body, ctype = get(srv, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert b"ipchub_up 1.0" in body
    samples = metrics(srv.port, f"?token={TOKEN}")
    assert samples[("ipchub_up", ())] == 1
    # Counted by route template and status, 401s included.
    assert samples[("ipchub_api_requests_total", (("route", "/metrics"), ("status", "401")))] == 2
    assert get(srv, "/healthz")[0] == 200  # probes need no token


def _request(client: str, query: str = "", authorization: str = "") -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "GET", "path": "/metrics", "query_string": query.encode(),
                    "headers": headers, "client": (client, 40000)})


def _front(token: str | None) -> Any:
    return SimpleNamespace(config=Config(metrics=MetricsConfig(token=token)))


def test_without_a_token_only_loopback_clients() -> None:
    check_metrics_access(_front(None), _request("127.0.0.1"))
    check_metrics_access(_front(None), _request("::1"))
    with pytest.raises(Forbidden):
        check_metrics_access(_front(None), _request("10.1.2.3"))


def test_loopback_through_a_dual_stack_socket() -> None:
    """Listening on `[::]` (IPv6 and IPv4 on one socket, Linux's default), a
    scraper on 127.0.0.1 arrives as `::ffff:127.0.0.1`: Python 3.11's
    `is_loopback` says no to it, and `/metrics` answered 403 to the local
    Prometheus. A mapped address is judged as the IPv4 address it carries."""
    check_metrics_access(_front(None), _request("::ffff:127.0.0.1"))
    check_metrics_access(_front(None), _request("::ffff:127.8.9.10"))
    for outside in ("::ffff:10.1.2.3", "::ffff:0:127.0.0.1", "64:ff9b::7f00:1", "::127.0.0.1", "", "unix"):
        with pytest.raises(Forbidden):
            check_metrics_access(_front(None), _request(outside))


def test_with_a_token_any_client_that_has_it() -> None:
    check_metrics_access(_front(TOKEN), _request("10.1.2.3", authorization=f"Bearer {TOKEN}"))
    check_metrics_access(_front(TOKEN), _request("10.1.2.3", query=f"token={TOKEN}"))
    for bad in (_request("127.0.0.1"), _request("127.0.0.1", query="token=nope"),
                _request("10.1.2.3", authorization=f"Basic {TOKEN}")):
        with pytest.raises(Unauthorized):
            check_metrics_access(_front(TOKEN), bad)
