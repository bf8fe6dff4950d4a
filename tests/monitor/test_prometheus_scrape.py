"""A real Prometheus server (Debian's ``prometheus``, which scripts/test installs) scraping keel's monitoring gauges
from an HTTP server on 127.0.0.1 every second, then queried through its HTTP API: the values arrive, a column dropped
from the newest window goes stale, and every query of the shipped Grafana dashboard runs and finds data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.monitor.prometheus import MonitorMetrics, dashboard_json
from keel.serve.metrics import ServeMetrics
from keel.testing.monitoring import PrometheusAPI, prometheus, targets_up, until
from keel.testing.services import free_port, serve_app

START_TIMEOUT = 30.0  # Prometheus starts in ~1 s and marks a target up after its first scrape (~5 s)
WAIT = 20.0

pytestmark = pytest.mark.slow  # ~10 s: Prometheus marks its target up after ~5 s


class Scraped(PrometheusAPI):
    """The metrics a test publishes and the Prometheus that scrapes them."""

    def __init__(self, monitor: MonitorMetrics, serve: ServeMetrics, url: str) -> None:
        super().__init__(url, WAIT)
        self.monitor, self.serve = monitor, serve


def _metrics_app(monitor: MonitorMetrics, serve: ServeMetrics) -> Starlette:
    async def metrics(request: Request) -> Response:
        body, content_type = monitor.render()
        served, _ = serve.render()  # one target for both, as when keel server exposes the monitors next to serving
        return Response(body + served, headers={"Content-Type": content_type})

    return Starlette(routes=[Route("/metrics", metrics)])


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    monitor, serve = MonitorMetrics(), ServeMetrics("churn")
    serve.observe("primary", "models:/churn/3", 200, 0.004)
    serve.log_counters(lambda: {"written": 1})
    home = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    try:
        with (
            serve_app(_metrics_app(monitor, serve)) as target,
            prometheus(home, {"keel": target.removeprefix("http://")}, port) as proc,
        ):
            url = f"http://127.0.0.1:{port}"
            until("prometheus's target up", proc, home / "prometheus.log", lambda: targets_up(url, 1), START_TIMEOUT)
            yield Scraped(monitor, serve, url)
    finally:
        serve.close()


def value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def test_prometheus_scrapes_a_published_window(scraped: Scraped) -> None:
    window = {"drift.share": 0.25, "drift.columns": 1.0, "drift.age.score": 0.31, "drift.plan.score": 2.5,
              "quality.age.missing_share": 0.02, "performance.realised.accuracy": 0.81,
              "performance.estimated.accuracy": 0.87, "health.latency_p99_ms": 4.5}  # fmt: skip
    scraped.monitor.publish("churn-drift", "churn", window, {"warning": 1}, window_end=1_700_000_000.0)
    share = scraped.eventually('keel_monitor_drift_share{monitor="churn-drift"}', lambda r: len(r) == 1)
    assert value(share[0]) == 0.25
    assert share[0]["metric"] == {"__name__": "keel_monitor_drift_share", "monitor": "churn-drift", "deployment": "churn",
                                  "job": "keel", "instance": share[0]["metric"]["instance"]}  # fmt: skip
    performance = scraped.query('keel_monitor_performance{monitor="churn-drift", metric="accuracy"}')
    assert {s["metric"]["kind"]: value(s) for s in performance} == {"realised": 0.81, "estimated": 0.87}
    warning = scraped.query('keel_monitor_alerts_firing{monitor="churn-drift", severity="warning"}')
    assert [value(s) for s in warning] == [1.0]
    end = scraped.query('keel_monitor_last_window_end_seconds{monitor="churn-drift"}')
    assert [value(s) for s in end] == [1_700_000_000.0]


def test_a_column_dropped_from_the_newest_window_goes_stale(scraped: Scraped) -> None:
    scraped.monitor.publish("fraud-drift", "fraud", {"drift.share": 0.5, "drift.amount.score": 0.4, "drift.country.score": 9.0})
    scraped.eventually('keel_monitor_drift_score{monitor="fraud-drift"}', lambda r: len(r) == 2)
    scraped.monitor.publish("fraud-drift", "fraud", {"drift.share": 0.0, "drift.amount.score": 0.1})
    # the series left the scrape: Prometheus marks it stale at once, instead of repeating 9.0 for five minutes
    scores = scraped.eventually('keel_monitor_drift_score{monitor="fraud-drift"}', lambda r: len(r) == 1)
    assert scores[0]["metric"]["column"] == "amount" and value(scores[0]) == 0.1
    assert [value(s) for s in scraped.query('keel_monitor_drift_share{monitor="fraud-drift"}')] == [0.0]


def test_every_dashboard_query_runs_on_prometheus_and_finds_data(scraped: Scraped) -> None:
    scraped.monitor.publish("dash", "churn", {"drift.share": 0.1, "drift.columns": 1.0, "drift.age.score": 0.3,
        "quality.age.missing_share": 0.0, "quality.age.missing_share_change": 0.01, "performance.realised.f1": 0.7,
        "performance.estimated.f1": 0.75, "health.latency_p50_ms": 1.0, "health.latency_p99_ms": 3.0,
        "health.throughput_per_s": 12.0}, {})  # fmt: skip
    scraped.eventually('keel_monitor_drift_share{monitor="dash"}', lambda r: len(r) == 1)
    for panel in dashboard_json()["panels"]:
        for target in panel["targets"]:
            # Grafana's variables as "All" would set them; rates over a minute hold several 1 s scrapes
            expr = re.sub(r"\$(monitor|deployment)\b", ".*", target["expr"]).replace("$__rate_interval", "1m")
            assert "$" not in expr, expr
            scraped.eventually(expr, lambda r: len(r) > 0)
