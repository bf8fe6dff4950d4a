"""keel.monitor.prometheus: the gauges a scrape reads after a window is published (parsed with prometheus_client's
own parser), stale series removed, and the Grafana dashboard shipped with keel, whose every query names only series
keel exports."""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from keel.core.errors import InvalidArgument
from keel.monitor.prometheus import MonitorMetrics, dashboard_json
from keel.monitor.windows import evaluate_table
from keel.serve.metrics import ServeMetrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: MonitorMetrics) -> Samples:
    """Every sample of a scrape: (name, labels) -> value."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def at(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def labelled(found: Samples, **labels: str) -> list[tuple[str, dict[str, str]]]:
    """The samples carrying every one of ``labels``."""
    return [(name, dict(ls)) for name, ls in found if labels.items() <= dict(ls).items()]


@pytest.fixture(scope="module")
def window() -> dict[str, float]:
    """A real window's flat values: a numeric and a categorical column that both drift, labels and probabilities."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"age": rng.normal(40, 5, 500), "plan": rng.choice(["a", "b"], 500)})
    n = 200
    table = pa.table({
        "time": np.arange(n, dtype=np.int64) * 10, "request_id": [f"r{i}" for i in range(n)], "row": [0] * n,
        "latency_ms": rng.uniform(1, 5, n), "age": rng.normal(50, 5, n), "plan": rng.choice(["a", "c"], n),
        "output": rng.integers(0, 2, n), "proba1": rng.uniform(0, 1, n),
    })  # fmt: skip
    labels = [int(v) for v in rng.integers(0, 2, n)]
    return evaluate_table(table, reference=reference, labels=labels, deployment="churn").values()


def test_a_published_window_is_exposed_value_for_value(window: dict[str, float]) -> None:
    metrics = MonitorMetrics()
    metrics.publish("churn-drift", "churn", window, {"warning": 2}, window_end=1_700_000_000.0)
    found = scrape(metrics)
    ids = {"monitor": "churn-drift", "deployment": "churn"}
    assert at(found, "keel_monitor_drift_share", **ids) == window["drift.share"] == 1.0
    assert at(found, "keel_monitor_drifted_columns", **ids) == 2.0
    assert at(found, "keel_monitor_drift_score", **ids, column="age") == pytest.approx(window["drift.age.score"])
    assert at(found, "keel_monitor_drift_score", **ids, column="plan") == pytest.approx(window["drift.plan.score"])
    assert at(found, "keel_monitor_quality", **ids, column="age", check="out_of_range_share") == pytest.approx(
        window["quality.age.out_of_range_share"]
    )
    assert at(found, "keel_monitor_quality", **ids, column="plan", check="unseen_category_share") > 0.4  # "c" is new
    assert at(found, "keel_monitor_quality", **ids, column="plan", check="missing_share") == 0.0
    for kind in ("realised", "estimated"):
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            expected = window[f"performance.{kind}.{metric}"]
            assert at(found, "keel_monitor_performance", **ids, metric=metric, kind=kind) == pytest.approx(expected)
    assert at(found, "keel_monitor_health", **ids, measure="rows") == 200.0
    assert at(found, "keel_monitor_health", **ids, measure="latency_p99_ms") == pytest.approx(window["health.latency_p99_ms"])
    assert at(found, "keel_monitor_health", **ids, measure="throughput_per_s") == pytest.approx(window["health.throughput_per_s"])
    assert {sev: at(found, "keel_monitor_alerts_firing", **ids, severity=sev) for sev in ("info", "warning", "critical")} == {
        "info": 0.0, "warning": 2.0, "critical": 0.0}  # fmt: skip
    assert at(found, "keel_monitor_last_window_end_seconds", **ids) == 1_700_000_000.0
    # one series per value of the window, plus three severities and the window's end: nothing more
    assert len(labelled(found, **ids)) == len(window) + 3 + 1


def test_a_series_missing_from_the_newest_window_is_removed(window: dict[str, float]) -> None:
    metrics = MonitorMetrics()
    metrics.publish("churn-drift", "churn", window, {"critical": 1})
    metrics.publish("other", "fraud", {"drift.share": 0.5, "drift.plan.score": 3.0})
    newer = {k: v for k, v in window.items() if ".plan." not in k and not k.startswith("performance.realised.")}
    newer["drift.share"] = 0.0
    metrics.publish("churn-drift", "churn", newer)  # no alert counts given: the last ones stay
    found = scrape(metrics)
    ids = {"monitor": "churn-drift", "deployment": "churn"}
    assert labelled(found, **ids, column="plan") == []
    assert labelled(found, **ids, kind="realised") == []
    assert at(found, "keel_monitor_drift_share", **ids) == 0.0
    assert at(found, "keel_monitor_drift_score", **ids, column="age") == pytest.approx(window["drift.age.score"])
    assert at(found, "keel_monitor_performance", **ids, metric="accuracy", kind="estimated") == pytest.approx(
        window["performance.estimated.accuracy"]
    )
    assert at(found, "keel_monitor_alerts_firing", **ids, severity="critical") == 1.0
    assert at(found, "keel_monitor_drift_score", monitor="other", deployment="fraud", column="plan") == 3.0  # untouched
    metrics.publish("churn-drift", "churn", newer, {})  # the alert resolved: 0, not a gap
    assert at(scrape(metrics), "keel_monitor_alerts_firing", **ids, severity="critical") == 0.0
    metrics.forget("churn-drift", "churn")
    found = scrape(metrics)
    assert labelled(found, **ids) == [] and len(labelled(found, monitor="other")) == 3


def test_column_names_with_dots_and_unknown_names() -> None:
    metrics = MonitorMetrics()
    values = {"drift.a.b.score": 0.2, "quality.a.b.missing_share": 0.1, "performance.realised.f1": 0.9,
              "performance.guessed.f1": 0.5, "labelled_rows": 3.0, "drift.score": 1.0}  # fmt: skip
    metrics.publish("m", "d", values, window_end=5.0)
    found = scrape(metrics)
    assert at(found, "keel_monitor_drift_score", monitor="m", deployment="d", column="a.b") == 0.2
    assert at(found, "keel_monitor_quality", monitor="m", deployment="d", column="a.b", check="missing_share") == 0.1
    assert at(found, "keel_monitor_performance", monitor="m", deployment="d", metric="f1", kind="realised") == 0.9
    assert len(labelled(found, monitor="m")) == 4  # the three above and the window's end: the rest is ignored


def test_bad_input_is_refused_and_leaves_the_last_window_in_place() -> None:
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    metrics.publish("m", "d", {"drift.share": 0.1})
    with pytest.raises(InvalidArgument, match="alerts_firing"):
        metrics.publish("m", "d", {"drift.share": 0.9}, {"urgent": 1})
    with pytest.raises(InvalidArgument, match="alerts_firing"):
        metrics.publish("m", "d", {"drift.share": 0.9}, {"warning": -1})
    with pytest.raises(InvalidArgument, match=r"drift\.share"):
        metrics.publish("m", "d", {"drift.share": "high"})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match="monitor"):
        metrics.publish("", "d", {"drift.share": 0.9})
    assert registry.get_sample_value("keel_monitor_drift_share", {"monitor": "m", "deployment": "d"}) == 0.1


# --- the Grafana dashboard --------------------------------------------------------------------------------------

PROMQL_FUNCTIONS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "time"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")


def exported() -> dict[str, set[str]]:
    """Every series name keel exports, with its label names: the monitor's gauges after a publish and an inference
    server's metrics after each of its methods ran once."""
    monitor = MonitorMetrics()
    window = {"drift.share": 0.1, "drift.columns": 1.0, "drift.x.score": 0.2, "quality.x.missing_share": 0.0,
              "performance.realised.f1": 0.8, "health.rows": 1.0}  # fmt: skip
    monitor.publish("m", "d", window, {})
    serve = ServeMetrics("d")
    serve.observe("primary", "models:/m/1", 200, 0.01)
    serve.error("primary", "models:/m/1")
    serve.batch(4)
    serve.shadow("models:/m/2", agreed=False)
    serve.shadow_skipped("models:/m/2", 1)
    serve.queue_depth(lambda: 0)
    serve.log_counters(lambda: {"written": 1})
    names: dict[str, set[str]] = {}
    for registry in (monitor.registry, serve.registry):
        for family in registry.collect():
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    serve.close()
    return names


def problems(expr: str, names: dict[str, set[str]]) -> list[str]:
    """What in a PromQL expression is not keel's: unknown series, labels a series does not have, unknown functions."""
    found: list[str] = []
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and Grafana variables inside them
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, such as [$__rate_interval]
    series: list[str] = []
    for name, matchers in SELECTOR.findall(text):
        for label in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers):
            if name and name in names and label not in names[name]:
                found.append(f"{name} has no label {label!r}")
    text = SELECTOR.sub(lambda m: m.group(1) or "", text)
    grouped = [label.strip() for labels in GROUPING.findall(text) for label in labels.split(",") if label.strip()]
    text = GROUPING.sub(" ", text)
    for name, call in IDENTIFIER.findall(text):
        if call:
            if name not in PROMQL_FUNCTIONS:
                found.append(f"unknown function {name}")
        elif name not in PROMQL_KEYWORDS:
            series.append(name)
            if name not in names:
                found.append(f"unknown series {name}")
    if not series:
        found.append("no keel series")
    known = set().union(*(names.get(s, set()) for s in series))
    found += [f"no series here has a label {label!r}" for label in grouped if label not in known]
    return found


def test_the_dashboard_is_shipped_as_package_data_and_loads() -> None:
    text = resources.files("keel.monitor").joinpath("grafana/keel-monitoring.json").read_text(encoding="utf-8")
    dashboard = dashboard_json()
    assert dashboard == json.loads(text)
    assert dashboard["uid"] == "keel-monitoring" and 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["monitor"]["query"]["query"] == "label_values(keel_monitor_drift_share, monitor)"
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 10


def test_every_dashboard_query_names_only_series_and_labels_keel_exports() -> None:
    names = exported()
    dashboard = dashboard_json()
    exprs: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no targets"
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"]
            exprs.append((panel["title"], target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner, label = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["query"]["query"]).groups()  # type: ignore[union-attr]
            exprs.append((f"${variable['name']}", inner))
            metric = inner.split("{")[0]
            assert label in names[metric], f"${variable['name']}: {metric} has no label {label}"
    assert {f"{p}: {e}": problems(e, names) for p, e in exprs} == {f"{p}: {e}": [] for p, e in exprs}
    used = {name for _, e in exprs for name in names if re.search(rf"\b{name}\b", e)}
    wanted = {"keel_monitor_drift_share", "keel_monitor_drift_score", "keel_monitor_drifted_columns", "keel_monitor_quality",
              "keel_monitor_performance", "keel_monitor_health", "keel_monitor_alerts_firing",
              "keel_monitor_last_window_end_seconds", "keel_serve_requests_total", "keel_serve_request_seconds_bucket",
              "keel_serve_prediction_log_rows_total"}  # fmt: skip
    assert wanted <= used


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('keel_monitor_drift_shar{monitor=~"$monitor"}', "unknown series keel_monitor_drift_shar"),
        ('keel_monitor_quality{colum="age"}', "keel_monitor_quality has no label 'colum'"),
        ("sum by (severty) (keel_monitor_alerts_firing)", "no series here has a label 'severty'"),
        ("rate(keel_serve_requests[5m])", "unknown series keel_serve_requests"),  # the counter's family, not a series
        ("histogram_quantil(0.99, keel_serve_request_seconds_bucket)", "unknown function histogram_quantil"),
        ("time() - keel_monitor_last_window_end_second", "unknown series keel_monitor_last_window_end_second"),
        ('up{job="keel"}', "unknown series up"),
        ("1 + 2", "no keel series"),
    ],
)
def test_the_dashboard_check_catches_a_typo(expr: str, problem: str) -> None:
    assert problem in problems(expr, exported())
