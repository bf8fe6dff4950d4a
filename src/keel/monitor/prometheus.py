"""Prometheus gauges of monitoring results, rendered in the text exposition format, and the Grafana dashboard
that charts them.

Each ``publish`` replaces everything known about one ``(monitor, deployment)`` pair with its newest window's flat
values (``WindowResult.values()``). Series (every one labelled ``monitor`` and ``deployment``):

- ``keel_monitor_drift_share``: share of the tested columns that drifted (``drift.share``);
- ``keel_monitor_drifted_columns``: how many columns drifted (``drift.columns``);
- ``keel_monitor_drift_score{column}``: each tested column's drift statistic (``drift.<column>.score``);
- ``keel_monitor_prediction_drift_score{output}``: the predictions' drift against the monitor's first window
  (``prediction_drift.<output>.score``; ``output`` is ``output`` or ``proba1``);
- ``keel_monitor_quality{column, check}``: ``quality.<column>.<check>``, checks such as ``missing_share``,
  ``missing_share_change``, ``out_of_range_share`` and ``unseen_category_share``;
- ``keel_monitor_performance{metric, kind}``: ``performance.<kind>.<metric>``, ``kind`` being ``realised`` (on
  the labelled rows) or ``estimated`` (CBPE), metrics such as ``accuracy``, ``f1`` and ``roc_auc``;
- ``keel_monitor_health{measure}``: ``health.<measure>``: ``rows``, ``requests``, ``throughput_per_s``,
  ``latency_p50_ms``, ``latency_p99_ms``;
- ``keel_monitor_alerts_firing{severity}``: alerts firing, by severity (``info``, ``warning``, ``critical``);
- ``keel_monitor_last_window_end_seconds``: end of the newest window published, Unix seconds.

Label sets stay bounded: columns and checks are those of the deployment's model inputs, metrics and measures are
fixed lists, severities come from ``keel.core.monitoring.SEVERITIES``. A series missing from the newest window (a
column no longer sent, realised performance in a window where no label arrived) is removed rather than left
showing an old value: Prometheus then marks it stale. Names that match none of the patterns above are ignored.

>>> metrics = MonitorMetrics()
>>> metrics.publish("churn-drift", "churn", {"drift.share": 0.25, "drift.age.score": 0.31}, {"warning": 1})
>>> body, content_type = metrics.render()   # what a /metrics route answers
"""

from __future__ import annotations

import json
import numbers
import threading
import time
from importlib import resources
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from keel.core.errors import InvalidArgument
from keel.core.monitoring import SEVERITIES

__all__ = ["DASHBOARD", "MonitorMetrics", "dashboard_json"]

DASHBOARD = "grafana/keel-monitoring.json"  # under keel/monitor, shipped as package data
KINDS = ("realised", "estimated")

Series = dict[str, dict[tuple[str, ...], float]]  # gauge name -> extra label values -> value


class MonitorMetrics:
    """The monitoring gauges in a registry of their own (by default; prometheus_client's global one is never used
    unless passed). Every method is thread safe, and a scrape never sees half of a ``publish``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        d = ["monitor", "deployment"]
        self._gauges = {
            "drift_share": Gauge("keel_monitor_drift_share", "Share of the tested columns that drifted, newest window.",
                                 d, registry=registry),
            "drifted_columns": Gauge("keel_monitor_drifted_columns", "Columns that drifted, newest window.", d,
                                     registry=registry),
            "drift_score": Gauge("keel_monitor_drift_score", "Drift statistic of each column, newest window.",
                                 [*d, "column"], registry=registry),
            "prediction_drift": Gauge("keel_monitor_prediction_drift_score", "Drift statistic of the predictions "
                                      "against the monitor's first window.", [*d, "output"], registry=registry),
            "quality": Gauge("keel_monitor_quality", "Data-quality checks of each column, newest window.",
                             [*d, "column", "check"], registry=registry),
            "performance": Gauge("keel_monitor_performance", "Model performance, realised (labelled rows) or estimated.",
                                 [*d, "metric", "kind"], registry=registry),
            "health": Gauge("keel_monitor_health", "Rows, requests, throughput and latency of the newest window.",
                            [*d, "measure"], registry=registry),
            "alerts_firing": Gauge("keel_monitor_alerts_firing", "Alerts firing, by severity.", [*d, "severity"],
                                   registry=registry),
            "last_window_end": Gauge("keel_monitor_last_window_end_seconds", "End of the newest window, Unix seconds.",
                                     d, registry=registry),
        }  # fmt: skip
        self._published: dict[tuple[str, str], Series] = {}
        self._lock = threading.Lock()

    def publish(
        self,
        monitor: str,
        deployment: str,
        values: dict[str, float],
        alerts_firing: dict[str, int] | None = None,
        *,
        window_end: float | None = None,
    ) -> None:
        """Replace the series of ``(monitor, deployment)`` with one window's flat ``values``.

        ``alerts_firing``: alerts firing by severity (severities left out count 0); None leaves the alert gauges as
        the last publish set them. ``window_end``: the window's end in Unix seconds (default: now, for a window
        that runs until the present).
        """
        for name, label in (("monitor", monitor), ("deployment", deployment)):
            if not isinstance(label, str) or not label:
                raise InvalidArgument.for_field(name, label, "a non-empty string")
        series = _series(values)
        if alerts_firing is not None:
            series["alerts_firing"] = _alerts(alerts_firing)
        end = time.time() if window_end is None else _number("window_end", window_end)
        series["last_window_end"] = {(): end}
        key = (monitor, deployment)
        with self._lock:
            old = self._published.get(key, {})
            if alerts_firing is None and "alerts_firing" in old:
                series["alerts_firing"] = old["alerts_firing"]
            for gauge_name, gauge in self._gauges.items():
                new = series.get(gauge_name, {})
                for labels in old.get(gauge_name, {}).keys() - new.keys():
                    gauge.remove(monitor, deployment, *labels)
                for labels, value in new.items():
                    gauge.labels(monitor, deployment, *labels).set(value)
            self._published[key] = series

    def forget(self, monitor: str, deployment: str) -> None:
        """Remove every series of ``(monitor, deployment)`` (the monitor was deleted or paused)."""
        with self._lock:
            old = self._published.pop((monitor, deployment), {})
            for gauge_name, labelled in old.items():
                for labels in labelled:
                    self._gauges[gauge_name].remove(monitor, deployment, *labels)

    def render(self) -> tuple[bytes, str]:
        """``(body, content type)`` of a ``/metrics`` route."""
        with self._lock:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _series(values: dict[str, float]) -> Series:
    """The flat names of ``WindowResult.values()`` sorted into gauges. Column names may hold dots: the check,
    metric and ``score`` suffixes never do, so names are split at their ends."""
    if not isinstance(values, dict):
        raise InvalidArgument.for_field("values", values, "a dict of flat names to numbers")
    out: Series = {}

    def put(gauge: str, labels: tuple[str, ...], name: str, value: Any) -> None:
        out.setdefault(gauge, {})[labels] = _number(name, value)

    for name, value in values.items():
        head, _, rest = str(name).partition(".")
        if name == "drift.share":
            put("drift_share", (), name, value)
        elif name == "drift.columns":
            put("drifted_columns", (), name, value)
        elif head == "drift" and rest.endswith(".score") and len(rest) > len(".score"):
            put("drift_score", (rest.removesuffix(".score"),), name, value)
        elif head == "prediction_drift" and rest.endswith(".score") and len(rest) > len(".score"):
            put("prediction_drift", (rest.removesuffix(".score"),), name, value)
        elif head == "quality" and "." in rest:
            column, check = rest.rsplit(".", 1)
            if column and check:
                put("quality", (column, check), name, value)
        elif head == "performance" and "." in rest:
            kind, metric = rest.split(".", 1)
            if kind in KINDS and metric:
                put("performance", (metric, kind), name, value)
        elif head == "health" and rest:
            put("health", (rest,), name, value)
    return out


def _alerts(firing: dict[str, int]) -> dict[tuple[str, ...], float]:
    if not isinstance(firing, dict):
        raise InvalidArgument.for_field("alerts_firing", firing, "a dict of severity to count")
    for severity, count in firing.items():
        if severity not in SEVERITIES:
            raise InvalidArgument.for_field("alerts_firing", severity, " or ".join(SEVERITIES))
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise InvalidArgument.for_field(f"alerts_firing[{severity}]", count, "a count (an integer >= 0)")
    # every severity gets a series, 0 when none fires: a resolved alert shows as 0 rather than as a gap
    return {(s,): float(firing.get(s, 0)) for s in SEVERITIES}


def _number(name: str, value: Any) -> float:
    # NaN passes: Prometheus stores it, and a statistic that came out undefined is worth seeing as such
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument.for_field(name, value, "a number")
    return float(value)


def dashboard_json() -> dict[str, Any]:
    """The Grafana dashboard of keel monitoring (drift, quality, performance, health, alerts, serving), as a dict
    ready for Grafana's import API or a provisioning folder (``json.dump`` it to a file)."""
    text = resources.files("keel.monitor").joinpath(DASHBOARD).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
