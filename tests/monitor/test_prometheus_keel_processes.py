"""A real Prometheus (Debian's ``prometheus``) scraping keel's own processes on 127.0.0.1, started as a user starts
them: ``keel scheduler --metrics-port`` (the monitors' gauges of the newest window with rows) and ``keel serve``
(the request counters), then queried through its HTTP API. Also: a restarted scheduler, with no window to compute
yet, serves the stored window's gauges at once instead of nothing for up to a window's length."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_breast_cancer

from keel.context import Context
from keel.core.monitoring import MonitorWindow
from keel.testing.cli import keel_cmd, keel_env
from keel.testing.monitoring import PrometheusAPI, running, store_with_traffic, tail, targets_up, until
from keel.testing.monitoring import prometheus as prometheus_server
from keel.testing.services import free_port

START_TIMEOUT = 60.0  # each process: keel imports scikit-learn and friends; Prometheus marks targets up after ~5 s
WAIT = 30.0
REQUESTS = 5

pytestmark = pytest.mark.slow  # ~15 s: three processes, and Prometheus's first scrapes


def _stored_newest_with_rows(folder: Path) -> MonitorWindow:
    ctx = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    try:
        windows = ctx.store.monitors.windows("live-1h")
    finally:
        ctx.close()
    with_rows = [w for w in windows if w.rows]
    assert with_rows, windows
    # the hour after the traffic is stored too, empty: what the gauges must not show
    assert windows[-1].rows == 0 and windows[-1].start_ms > with_rows[-1].start_ms, windows
    return with_rows[-1]


def _keel(cwd: Path, log: Path, *args: str) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return running([sys.executable, "-m", "keel.cli.main", *args], cwd, keel_env(cwd), log)


def _until(what: str, proc: subprocess.Popen[bytes], log: Path, check: Callable[[], object]) -> Any:
    return until(what, proc, log, check, START_TIMEOUT)


def _get_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def test_prometheus_scrapes_keel_scheduler_and_keel_serve(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    store_with_traffic(store)
    created = keel_cmd(store, "monitor", "create", "live-1h", "live", "--window", "1h")
    assert created.returncode == 0, created.stderr
    metrics_port, serve_port, prom_port = free_port(), free_port(), free_port()
    scheduler_log, serve_log, prom_log = tmp_path / "scheduler.log", tmp_path / "serve.log", tmp_path / "prometheus.log"
    targets = {"keel-scheduler": f"127.0.0.1:{metrics_port}", "keel-serve": f"127.0.0.1:{serve_port}"}
    with contextlib.ExitStack() as stack:
        scheduler = stack.enter_context(
            _keel(store, scheduler_log, "scheduler", "--interval", "1", "--metrics-port", str(metrics_port))
        )
        serve = stack.enter_context(_keel(store, serve_log, "serve", "live", "--port", str(serve_port)))
        prometheus = stack.enter_context(prometheus_server(tmp_path, targets, prom_port))
        serve_url, prom_url = f"http://127.0.0.1:{serve_port}", f"http://127.0.0.1:{prom_port}"
        _until("keel serve ready", serve, serve_log, lambda: _get_ok(f"{serve_url}/v2/health/ready"))
        X = load_breast_cancer(as_frame=True).data
        for i in range(REQUESTS):
            records = X.iloc[2 * i : 2 * i + 2].to_dict("records")
            answer = httpx.post(f"{serve_url}/predict", json={"records": records}, timeout=10)
            assert answer.status_code == 200, answer.text
        _until("keel scheduler's /metrics", scheduler, scheduler_log, lambda: _get_ok(f"http://127.0.0.1:{metrics_port}/metrics"))
        up = _until("both targets up in prometheus", prometheus, prom_log, lambda: targets_up(prom_url, 2))
        assert sorted(job for job, _, _ in up) == ["keel-scheduler", "keel-serve"]
        prom = PrometheusAPI(prom_url, WAIT)

        share = prom.eventually('keel_monitor_drift_share{monitor="live-1h"}', lambda r: len(r) == 1)
        window = _stored_newest_with_rows(store)  # the scheduler's first pass stored it before publishing
        assert share[0]["metric"]["deployment"] == "live" and share[0]["metric"]["job"] == "keel-scheduler"
        assert value(share[0]) == window.values["drift.share"] > 0  # one column of 30 drifted
        area = prom.query('keel_monitor_drift_score{monitor="live-1h", column="mean area"}')
        assert [value(s) for s in area] == [window.values["drift.mean area.score"]]
        end = prom.query('keel_monitor_last_window_end_seconds{monitor="live-1h"}')
        assert [value(s) for s in end] == [window.end_ms / 1000]  # the hour with traffic, not the empty hour after it

        served = prom.eventually(
            'sum(keel_serve_requests_total{deployment="live", status="200"})', lambda r: len(r) == 1 and value(r[0]) >= REQUESTS
        )
        assert value(served[0]) == REQUESTS  # nothing else answered on /predict
        assert scheduler.poll() is None and serve.poll() is None, (tail(scheduler_log), tail(serve_log))


def test_a_restarted_scheduler_serves_the_stored_window_at_once(tmp_path: Path) -> None:
    store_with_traffic(tmp_path)
    assert keel_cmd(tmp_path, "monitor", "create", "live-1h", "live", "--window", "1h").returncode == 0
    done = keel_cmd(tmp_path, "scheduler", "--once")  # computes every window: the restarted one has none to compute
    assert done.returncode == 0 and "live-1h: 2 window(s)" in done.stdout, (done.stdout, done.stderr)
    window = _stored_newest_with_rows(tmp_path)
    port = free_port()
    log = tmp_path / "scheduler.log"
    # its first pass has no window to compute (the current hour has not ended): what it shows, it showed at start
    with _keel(tmp_path, log, "scheduler", "--interval", "3600", "--metrics-port", str(port)) as scheduler:
        body = _until("keel scheduler's /metrics", scheduler, log, lambda: _metrics_text(f"http://127.0.0.1:{port}/metrics"))
    share = [line for line in body.splitlines() if line.startswith("keel_monitor_drift_share{")]
    assert len(share) == 1 and 'monitor="live-1h"' in share[0], body
    assert float(share[0].rsplit(" ", 1)[1]) == window.values["drift.share"]


def _metrics_text(url: str) -> str | None:
    answer = httpx.get(url, timeout=2)
    return answer.text if answer.status_code == 200 and "keel_monitor_drift_share{" in answer.text else None
