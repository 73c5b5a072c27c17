"""deploy/grafana/ipchub.json: every query names only the server's metrics,
with their labels, and parses as PromQL (promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import yaml  # type: ignore[import-untyped]

# METRICS: the metric names the server exposes and each one's labels.
from hub.supervisor.metrics import HISTOGRAMS, METRICS
from tests.conftest import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "ipchub.json"

TARGET_LABELS = {"instance", "job"}  # added by Prometheus to every series


def series_names() -> dict[str, set[str]]:
    """Names a query may use (histograms as _bucket/_sum/_count) -> labels."""
    out: dict[str, set[str]] = {}
    for name, labels in METRICS.items():
        if name in HISTOGRAMS:
            out[name + "_bucket"] = labels | {"le"}
            out[name + "_sum"] = set(labels)
            out[name + "_count"] = set(labels)
        else:
            out[name] = set(labels)
    return out


def _family(series: str) -> str:
    """`ipchub_ipc_request_seconds_bucket` -> `ipchub_ipc_request_seconds`."""
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and series[: -len(suffix)] in HISTOGRAMS:
            return series[: -len(suffix)]
    return series


PROMQL_FUNCTIONS = {"sum", "min", "max", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
                    "histogram_quantile", "clamp_min", "clamp_max", "abs", "delta", "deriv", "time",
                    "label_values", "vector", "scalar", "round", "sort_desc"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                   "bool", "offset"}


def _exprs(node: Any) -> Iterator[str]:
    """Every query in the dashboard: panel targets and template variables."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                yield v["query"]
            elif k == "definition" and isinstance(v, str):
                yield v
            else:
                yield from _exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _exprs(v)


def metric_names_in(expr: str) -> tuple[set[str], set[str]]:
    """(series names, label names) a PromQL expression refers to."""
    labels: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    for body in re.findall(r"\{([^}]*)\}", text):  # label matchers
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", body))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    for body in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels |= set(re.findall(r"[A-Za-z_]\w*", body))
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    names: set[str] = set()
    for m in re.finditer(r"[A-Za-z_:][\w:]*", text):
        word = m.group(0)
        after = text[m.end():].lstrip()[:1]
        if after == "(":
            assert word in PROMQL_FUNCTIONS, f"unknown function {word!r} in {expr}"
        elif word not in PROMQL_KEYWORDS:
            names.add(word)
    if expr.startswith("label_values("):  # Grafana's `label_values(metric, label)`
        metric, label = [w.strip() for w in expr[len("label_values("):-1].split(",")]
        names, labels = {metric}, {label}
    return names, labels


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def test_every_query_uses_only_known_metrics_and_their_labels() -> None:
    known = series_names()
    exprs = list(_exprs(_dashboard()))
    assert len(exprs) >= 20
    used: set[str] = set()
    for expr in exprs:
        names, labels = metric_names_in(expr)
        assert names, f"no metric in {expr}"
        unknown = names - known.keys()
        assert not unknown, f"{expr}: not a metric the server exposes: {unknown}"
        allowed = set().union(*(known[n] for n in names)) | TARGET_LABELS
        assert labels <= allowed, f"{expr}: labels {labels - allowed} not on {names}"
        used |= names
    # and every metric is shown somewhere
    assert {_family(n) for n in used} == METRICS.keys(), METRICS.keys() - {_family(n) for n in used}


def test_legends_name_labels_of_their_query() -> None:
    known = series_names()
    for panel in _dashboard()["panels"]:
        for t in panel.get("targets", []):
            names, labels = metric_names_in(t["expr"])
            for legend_label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                assert legend_label in labels, f"{panel['title']}: legend {{{{{legend_label}}}}} is not grouped by"
                assert any(legend_label in known[n] for n in names)


def test_checker_rejects_unknown_names() -> None:
    assert metric_names_in('sum by (protocol) (ipchub_players{instance=~"$instance"})') == (
        {"ipchub_players"}, {"protocol", "instance"})
    names, _ = metric_names_in("rate(ipchub_bytes_total[5m])")
    assert names - series_names().keys() == {"ipchub_bytes_total"}


def test_queries_parse_as_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make sysdeps` installs Debian's prometheus"
    rules = []
    for i, expr in enumerate(_exprs(_dashboard())):
        if expr.startswith("label_values("):
            continue
        concrete = expr.replace("$__rate_interval", "5m").replace("$instance", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    f = tmp_path / "rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(rules)} rules found" in r.stdout


def test_readme_metric_reference_matches() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    section = readme.split("### Metrics reference", 1)[1].split("\n## ", 1)[0]
    listed = {}
    for name, labels in re.findall(r"^\| `(ipchub_\w+)(?:\{([\w,]*)\})?` \|", section, re.M):
        listed[name] = set(labels.split(",")) if labels else set()
    assert listed == METRICS


def test_dashboard_shape() -> None:
    d = _dashboard()
    assert d["uid"] == "ipchub" and d["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
