"""Running monitors on a real store and a real prediction log: windows computed once and stored as a time series,
late labels recomputed, rules firing alerts whose actions run (webhook to a real loopback server, rollback,
retraining into a shadow), and the scheduler running each window once across replicas."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel.data
import keel.registry as registry
from keel.context import Context
from keel.core.monitoring import AlertRule, Monitor
from keel.monitor import Profile
from keel.monitor.runner import RETRAINERS, load_profile, profile_between, retrainer, run_monitor
from keel.monitor.scheduler import FAILURE_RULE, Scheduler
from keel.serve import log_labels
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predlog import PredictionLog

WINDOW = 60_000
T0 = 1_700_000_040_000 // WINDOW * WINDOW  # a window boundary, long ago


def _log(ctx: Context, deployment: str, model: Any, X: pd.DataFrame, start_ms: int, uri: str, tag: str) -> list[str]:
    values = X.to_numpy(dtype=np.float64)
    predicted, proba = model.predict(X), model.predict_proba(X)
    log = PredictionLog(ParquetSink(deployment, ctx))
    ids = [f"{tag}-{i}" for i in range(len(X))]
    log.offer([
        {"request_id": ids[i], "row": 0, "time": start_ms + 10 * i, "deployment": deployment, "route": "primary", "model": uri,
         "served": True, "inputs": values[i], "input_names": tuple(X.columns), "output": int(predicted[i]), "proba": proba[i],
         "latency_ms": 0.5, "replica": "test"}
        for i in range(len(X))
    ])  # fmt: skip
    log.close()
    assert log.written == len(X)
    return ids


def _drifted(X: pd.DataFrame) -> pd.DataFrame:
    out = X.copy()
    for column in ("mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter", "worst area"):
        out[column] = out[column] * 1.6
    return out


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.received.append((self.headers["Idempotency-Key"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def world(tmp_path):
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X.iloc[order].reset_index(drop=True), y.iloc[order].reset_index(drop=True)
    keel.data.log(X.iloc[:300], "train", ctx=ctx)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X.iloc[:300], y.iloc[:300])
    v1 = registry.register(model, "cancer", input_example=X.head(3), datasets=["train@1"], ctx=ctx)
    v2 = registry.register(model, "cancer", input_example=X.head(3), datasets=["train@1"], ctx=ctx)
    ctx.store.deployments.create("live", v1.uri)
    ctx.store.deployments.set_routes("live", primary=v2.uri, reason="v2")  # so that a rollback has somewhere to go
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    yield ctx, model, X, y, v1.uri, v2.uri, f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    ctx.close()


def test_windows_are_computed_once_alerts_fire_on_drift_and_their_actions_run(world) -> None:
    ctx, model, X, _, v1, v2, hook = world
    live = X.iloc[300:]
    _log(ctx, "live", model, live.iloc[:130], T0, v2, "normal")
    _log(ctx, "live", model, _drifted(live.iloc[130:]), T0 + WINDOW, v2, "drifted")
    rule = AlertRule("drift", "drift.share > 0.1", 1, "critical", ("log", f"webhook:{hook}", "rollback"))
    ctx.store.monitors.create_monitor(Monitor("live-1m", "live", WINDOW, None, (rule,)))
    summary = run_monitor("live-1m", until_ms=T0 + 2 * WINDOW, ctx=ctx)
    assert [w.start_ms for w in summary.computed] == [T0, T0 + WINDOW]
    normal, drifted = summary.computed
    assert normal.rows == 130 and drifted.rows == len(live) - 130
    assert normal.values["drift.share"] == 0.0 and drifted.values["drift.share"] > 0.1
    (alert,) = summary.fired
    assert alert.first_window_ms == T0 + WINDOW and "drift.share" in alert.message
    assert {r.action: r.status for r in summary.actions} == {"log": "ok", f"webhook:{hook}": "ok", "rollback": "ok"}
    assert ctx.store.deployments.get("live").primary == v1  # rolled back, by the monitor, with the alert as reason
    assert f"alert {alert.id}" in ctx.store.deployments.history("live")[-1].reason
    ((key, body),) = Hook.received
    assert body["alert"]["id"] == alert.id and body["deployment"] == "live" and key.startswith(f"keel-alert-{alert.id}-")
    again = run_monitor("live-1m", until_ms=T0 + 2 * WINDOW, ctx=ctx)  # nothing new: nothing computed, nothing fired
    assert again.computed == [] and again.fired == [] and len(Hook.received) == 1
    stored = ctx.store.monitors.windows("live-1m")
    assert [w.start_ms for w in stored] == [T0, T0 + WINDOW]
    profile = load_profile(stored[1], ctx)
    assert profile is not None and profile.rows == drifted.rows and "mean radius" in profile.columns
    both = profile_between("live-1m", T0, T0 + WINDOW, ctx=ctx)  # two windows merged from their stored sketches
    assert both.rows == len(live)
    merged, exact = both.columns["mean radius"], Profile.from_table(pd.concat([live.iloc[:130], _drifted(live.iloc[130:])]))
    assert merged.count == exact.columns["mean radius"].count  # type: ignore[union-attr]
    assert merged.max == exact.columns["mean radius"].max  # type: ignore[union-attr]


def test_an_error_rate_breach_rolls_the_deployment_back(world) -> None:
    ctx, model, X, _, v1, v2, _ = world
    live = X.iloc[300:400]
    values, proba = live.to_numpy(dtype=np.float64), model.predict_proba(live)
    log = PredictionLog(ParquetSink("live", ctx))
    log.offer([
        {"request_id": f"e{i}", "row": 0, "time": T0 + i, "deployment": "live", "route": "primary", "model": v2,
         "served": True, "inputs": values[i], "input_names": tuple(live.columns), "output": None if i % 4 == 0 else 1,
         "proba": None if i % 4 == 0 else proba[i], "latency_ms": 0.5, "replica": "test", "status": 500 if i % 4 == 0 else 200}
        for i in range(len(live))
    ])  # fmt: skip
    log.close()
    rule = AlertRule("errors", "health.error_rate > 0.1", 1, "critical", ("rollback",))
    ctx.store.monitors.create_monitor(Monitor("errors", "live", WINDOW, None, (rule,)))
    summary = run_monitor("errors", until_ms=T0 + WINDOW, ctx=ctx)
    (window,) = summary.computed
    assert window.values["health.error_rate"] == pytest.approx(0.25) and window.values["health.requests"] == 100
    assert window.rows == 75  # the profile holds the answered rows; the failed ones are in the error rate
    (alert,) = summary.fired
    assert "health.error_rate = 0.25 > 0.1" in alert.message
    assert ctx.store.deployments.get("live").primary == v1


def test_late_labels_replace_the_windows_performance(world) -> None:
    ctx, model, X, y, _, v2, _ = world
    live = X.iloc[300:400]
    ids = _log(ctx, "live", model, live, T0, v2, "late")
    ctx.store.monitors.create_monitor(Monitor("late", "live", WINDOW))
    first = run_monitor("late", until_ms=T0 + WINDOW, ctx=ctx)
    (window,) = first.computed
    assert window.labelled_rows == 0 and "performance.realised.accuracy" not in window.values
    assert window.values["performance.estimated.accuracy"] > 0.8
    log_labels(ids, [int(v) for v in y.iloc[300:400]], deployment="live", ctx=ctx)
    second = run_monitor("late", until_ms=T0 + WINDOW, ctx=ctx)
    (updated,) = second.relabelled
    expected = float((model.predict(live) == y.iloc[300:400]).mean())
    assert updated.labelled_rows == 100 and updated.values["performance.realised.accuracy"] == pytest.approx(expected)
    assert updated.values["drift.share"] == window.values["drift.share"]  # the rest of the window stays
    assert ctx.store.monitors.windows("late")[0].values["performance.realised.accuracy"] == pytest.approx(expected)


def test_a_retraining_action_adds_the_new_version_as_a_shadow_never_as_primary(world) -> None:
    ctx, model, X, _, _, v2, _ = world
    _log(ctx, "live", model, _drifted(X.iloc[300:]), T0, v2, "drifted")
    calls = []

    @retrainer("test-retrain")
    def retrain(monitor: Monitor, alert: Any, c: Context) -> str:
        calls.append(alert.id)
        return registry.register(model, "cancer-retrained", input_example=X.head(3), ctx=c).uri

    try:
        rule = AlertRule("drift", "drift.share > 0.1", 1, "warning", ("retrain:test-retrain", "retrain:unknown"))
        ctx.store.monitors.create_monitor(Monitor("retrain", "live", WINDOW, None, (rule,)))
        summary = run_monitor("retrain", until_ms=T0 + WINDOW, ctx=ctx)
    finally:
        RETRAINERS.pop("test-retrain", None)
    assert len(calls) == 1
    statuses = {r.action: (r.status, r.detail) for r in summary.actions}
    assert statuses["retrain:test-retrain"][0] == "ok"
    status, detail = statuses["retrain:unknown"]
    assert status == "failed" and "'unknown'" in detail and "registered (test-retrain)" in detail  # names what exists
    deployment = ctx.store.deployments.get("live")
    assert deployment.primary == v2 and deployment.shadows == ("models:/cancer-retrained/1",)


def test_replicas_of_the_scheduler_compute_each_window_once_and_a_failure_is_an_alert(world) -> None:
    ctx, model, X, _, _, v2, _ = world
    _log(ctx, "live", model, X.iloc[300:], T0, v2, "sched")
    ctx.store.monitors.create_monitor(Monitor("sched", "live", WINDOW))
    replicas = [Scheduler(ctx, owner=f"replica-{i}") for i in range(3)]
    done: list[int] = []
    threads = [
        threading.Thread(target=lambda s=s: done.extend(len(r.computed) for r in s.run_pending(T0 + 3 * WINDOW)))
        for s in replicas
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(done) == 3  # three whole windows, each computed by one replica
    assert [w.start_ms for w in ctx.store.monitors.windows("sched")] == [T0, T0 + WINDOW, T0 + 2 * WINDOW]
    ctx.store.monitors.create_monitor(Monitor("broken", "live", WINDOW, "no-such-dataset@1"))
    failing = Scheduler(ctx, owner="replica-x")
    assert failing.run_pending(T0 + WINDOW) == []
    (alert,) = ctx.store.monitors.alerts(monitor="broken", state="firing")
    assert alert.rule == FAILURE_RULE and alert.severity == "critical" and "no-such-dataset" in alert.message
    assert failing.run_pending(T0 + WINDOW) == []  # waiting to retry: not run again at once
    assert len(ctx.store.monitors.alerts(monitor="broken")) == 1
