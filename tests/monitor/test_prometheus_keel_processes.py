"""A real Prometheus (Debian's ``prometheus``) scraping keel's own processes on 127.0.0.1, started as a user starts
them: ``keel scheduler --metrics-port`` (the monitors' gauges of the newest window with rows) and ``keel serve``
(the request counters), then queried through its HTTP API. Also: a restarted scheduler, with no window to compute
yet, serves the stored window's gauges at once instead of nothing for up to a window's length."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import keel.data
import keel.registry as registry
from keel.context import Context
from keel.core.monitoring import MonitorWindow
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predlog import PredictionLog
from keel.testing.cli import keel_cmd, keel_env
from keel.testing.services import free_port

HOUR = 3_600_000
START_TIMEOUT = 60.0  # each process: keel imports scikit-learn and friends; Prometheus marks targets up after ~5 s
WAIT = 30.0
REQUESTS = 5

pytestmark = pytest.mark.slow  # ~15 s: three processes, and Prometheus's first scrapes


def _store_with_traffic(folder: Path) -> None:
    """A store in ``folder/.keel`` with deployment ``live`` and a whole hour of its predictions (the hour before
    last), ``mean area`` doubled; as in tests/cli/test_monitor_cli.py."""
    ctx = Context(f"sqlite:///{folder / '.keel' / 'keel.db'}", str(folder / ".keel" / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    keel.data.log(X.iloc[::2], "train", ctx=ctx)
    model = LogisticRegression(max_iter=5000).fit(X.iloc[::2], y.iloc[::2])
    version = registry.register(model, "cancer", input_example=X.head(3), datasets=["train@1"], ctx=ctx)
    ctx.store.deployments.create("live", version.uri)
    live = X.iloc[1::2].copy()
    live["mean area"] *= 2.0
    start = (int(time.time() * 1000) // HOUR - 2) * HOUR
    values, proba = live.to_numpy(dtype=np.float64), model.predict_proba(live)
    log = PredictionLog(ParquetSink("live", ctx))
    log.offer([
        {"request_id": f"r{i}", "row": 0, "time": start + i, "deployment": "live", "route": "primary", "model": version.uri,
         "served": True, "inputs": values[i], "input_names": tuple(live.columns), "output": int(proba[i, 1] > 0.5),
         "proba": proba[i], "latency_ms": 0.3, "replica": "test"}
        for i in range(len(live))
    ])  # fmt: skip
    log.close()
    ctx.close()


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


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else "(no log)"


@contextlib.contextmanager
def _process(args: list[str], cwd: Path, env: dict[str, str] | None, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` running in ``cwd`` (output in ``log``), stopped on exit whatever happened."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _keel(cwd: Path, log: Path, *args: str) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return _process([sys.executable, "-m", "keel.cli.main", *args], cwd, keel_env(cwd), log)


def _until(what: str, proc: subprocess.Popen[bytes], log: Path, check: Callable[[], object]) -> Any:
    """``check()``'s first truthy answer within START_TIMEOUT, failing with the log's tail if ``proc`` exits or
    time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}:\n{_tail(log)}")
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, ValueError) as e:  # not up yet; while starting it answers 503 in plain text
            last = e
        time.sleep(0.2)
    pytest.fail(f"{what}: not after {START_TIMEOUT} s (last: {last}):\n{_tail(log)}")


def _get_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert answer["status"] == "success", (promql, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def eventually(self, promql: str, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while True:
            result = self.query(promql)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql}: still {result} after {WAIT} s")
            time.sleep(0.2)


def _prometheus_config(home: Path, targets: dict[str, str]) -> Path:
    config = home / "prometheus.yml"
    jobs = "".join(
        f"  - job_name: {job}\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
        for job, target in targets.items()
    )
    config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}")
    return config


def _targets_up(url: str, expected: int) -> list[tuple[str, str, str]] | None:
    targets = httpx.get(f"{url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
    if len(targets) == expected and all(t["health"] == "up" for t in targets):
        return [(t["labels"]["job"], t["scrapeUrl"], t["health"]) for t in targets]
    return None


def value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def test_prometheus_scrapes_keel_scheduler_and_keel_serve(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus binary is not on PATH: install Debian's package (scripts/test does: "
                    "apt-get install -y --no-install-recommends prometheus)")  # fmt: skip
    store = tmp_path / "store"
    store.mkdir()
    _store_with_traffic(store)
    created = keel_cmd(store, "monitor", "create", "live-1h", "live", "--window", "1h")
    assert created.returncode == 0, created.stderr
    metrics_port, serve_port, prom_port = free_port(), free_port(), free_port()
    scheduler_log, serve_log, prom_log = tmp_path / "scheduler.log", tmp_path / "serve.log", tmp_path / "prometheus.log"
    targets = {"keel-scheduler": f"127.0.0.1:{metrics_port}", "keel-serve": f"127.0.0.1:{serve_port}"}
    config = _prometheus_config(tmp_path, targets)
    with contextlib.ExitStack() as stack:
        scheduler = stack.enter_context(
            _keel(store, scheduler_log, "scheduler", "--interval", "1", "--metrics-port", str(metrics_port))
        )
        serve = stack.enter_context(_keel(store, serve_log, "serve", "live", "--port", str(serve_port)))
        prometheus = stack.enter_context(
            _process([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                      f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=info"], tmp_path, None, prom_log)
        )  # fmt: skip
        serve_url, prom_url = f"http://127.0.0.1:{serve_port}", f"http://127.0.0.1:{prom_port}"
        _until("keel serve ready", serve, serve_log, lambda: _get_ok(f"{serve_url}/v2/health/ready"))
        X = load_breast_cancer(as_frame=True).data
        for i in range(REQUESTS):
            records = X.iloc[2 * i : 2 * i + 2].to_dict("records")
            answer = httpx.post(f"{serve_url}/predict", json={"records": records}, timeout=10)
            assert answer.status_code == 200, answer.text
        _until("keel scheduler's /metrics", scheduler, scheduler_log, lambda: _get_ok(f"http://127.0.0.1:{metrics_port}/metrics"))
        up = _until("both targets up in prometheus", prometheus, prom_log, lambda: _targets_up(prom_url, 2))
        assert sorted(job for job, _, _ in up) == ["keel-scheduler", "keel-serve"]
        prom = Prometheus(prom_url)

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
        assert scheduler.poll() is None and serve.poll() is None, (_tail(scheduler_log), _tail(serve_log))


def test_a_restarted_scheduler_serves_the_stored_window_at_once(tmp_path: Path) -> None:
    _store_with_traffic(tmp_path)
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
