"""The quickstart's monitoring loop: normal traffic, then drifted traffic; the drift alert fires; a retraining
pipeline with HPO runs on the newest labelled data; the gate passes; the new model joins as a shadow; the live
comparison favours it; it is promoted; every step says why (alert id in the deployment's history, lineage from
the new dataset version to the model).

Windows of ``WINDOW_MS`` are aligned on the clock, so each phase waits for the next window to begin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from keel.cli.output import console, esc, fmt_num, fmt_time

DEPLOYMENT = "breast-cancer-live"
MONITOR = "breast-cancer-live"
RETRAINED = "breast-cancer-retrained"
LIVE_DATA = "breast-cancer-live"
WINDOW_MS = 3_000
RECALIBRATED = ("mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter", "worst area")
SCALE = 1.5  # the instrument now reads sizes 50% larger
AGAIN = "quickstart: start again from production"


def recalibrated(frame: Any) -> Any:
    out = frame.copy()
    for column in RECALIBRATED:
        out[column] = out[column] * SCALE
    return out


def monitoring_loop(frame: Any, home: Path) -> Path:
    """Run the loop; returns the monitor's HTML report."""
    from keel.cli.quickstart import _wait_for_shadow, _wait_ready, httpx_client
    from keel.context import current
    from keel.core.monitoring import AlertRule, Monitor
    from keel.monitor.runner import retrainer, run_monitor
    from keel.serve import compare, create_app, log_labels, serving

    ctx = current()
    store = ctx.store
    shuffled = frame.sample(frac=1.0, random_state=2).reset_index(drop=True)
    features, labels = shuffled.drop(columns=["target"]), shuffled["target"].tolist()
    thirds = [slice(0, 190), slice(190, 380), slice(380, len(shuffled))]
    _fresh_deployment(store)
    rule = AlertRule("drift", "drift.share > 0.15", 1, "critical", ("log", "retrain:quickstart"))
    monitor = Monitor(MONITOR, DEPLOYMENT, WINDOW_MS, None, (rule,))
    if any(m.name == MONITOR for m in store.monitors.list_monitors()):
        store.monitors.update_monitor(monitor)
    else:
        store.monitors.create_monitor(monitor)
    console.print(f"monitor {MONITOR}: windows of {WINDOW_MS // 1000} s against the production model's training data; "
                  f"rule {esc(rule.expression)} -> retrain")  # fmt: skip
    retrainer("quickstart")(_retrain)
    app = create_app(DEPLOYMENT, poll_interval=0.2)
    with serving(app) as url, httpx_client(url) as http:
        _wait_ready(http, DEPLOYMENT)
        started = _next_window()
        for phase, (rows, what) in enumerate(((thirds[0], "normal traffic"), (thirds[1], "drifted traffic"))):
            if phase:
                _next_window()
            ids = _send_labelled(http, features.iloc[rows], what, recalibrate=phase == 1)
            log_labels(ids, labels[rows], deployment=DEPLOYMENT)
        _next_window()
        app.state.serving.predictions.flush()  # the log's writer thread writes about every second: not yet, now
        summary = run_monitor(MONITOR, ctx=ctx)
        for window in summary.computed:
            v = window.values
            drift = f"{v['drift.share']:.0%} of columns" if "drift.share" in v else "-"
            accuracy = fmt_num(v.get("performance.realised.accuracy"))
            console.print(f"  window {fmt_time(window.start_ms)}: {window.rows} rows, drift {drift}, accuracy {accuracy}")
        for alert in summary.fired:
            console.print(f"[red]alert {alert.id}[/] {esc(alert.rule)}: {esc(alert.message)}")
        for record in summary.actions:
            console.print(f"  action {esc(record.action)}: {record.status}: {esc(record.detail)}")
        shadow = next((s for s in store.deployments.get(DEPLOYMENT).shadows), None)
        if shadow is None:
            console.print("[yellow]no retrained shadow[/]: the loop stops here")
            return _report(home, started)
        _wait_for_shadow(app, shadow)
        since = _next_window()
        ids = _send_labelled(http, features.iloc[thirds[2]], "drifted traffic, retrained shadow", recalibrate=True)
        log_labels(ids, labels[thirds[2]], deployment=DEPLOYMENT)
    comparison = compare(DEPLOYMENT, since=since)
    challenger = next((c for c in comparison.challengers if c.model == shadow), None)
    verdict = challenger.metrics[0].verdict if challenger is not None and challenger.metrics else "no verdict"
    if verdict == "better":
        d = store.deployments.get(DEPLOYMENT)
        reason = f"quickstart: the retrained shadow is significantly better live ({challenger.verdict if challenger else ''})"
        store.deployments.set_routes(
            DEPLOYMENT, primary=shadow, shadows=[], expected_updated_at=d.updated_at, reason=reason[:500]
        )
        console.print(f"[green]promoted[/] {esc(shadow)}: {esc(challenger.verdict if challenger else '')}")
    else:
        console.print(f"[yellow]not promoted[/]: {esc(challenger.verdict if challenger else verdict)}")
    console.print("lineage, newest first:")
    for change in reversed(store.deployments.history(DEPLOYMENT)[-3:]):
        console.print(f"  {change.what}: {esc(change.to_routes.get('primary'))} — {esc(change.reason)}")
    return _report(home, started)


def _fresh_deployment(store: Any) -> None:
    """Each run starts from production with no shadow (a rerun finds the previous run's retrained primary)."""
    from keel.core.errors import NotFound

    primary = "models:/breast-cancer@production"
    try:
        d = store.deployments.get(DEPLOYMENT)
    except NotFound:
        store.deployments.create(DEPLOYMENT, primary, reason="quickstart: the monitored deployment")
        return
    if d.primary != primary or d.shadows or d.canaries:
        store.deployments.set_routes(
            DEPLOYMENT, primary=primary, shadows=[], canaries=[], reason="quickstart: start again from production"
        )


def _next_window() -> int:
    """Sleep to the start of the next window; its start (ms)."""
    now = int(time.time() * 1000)
    start = (now // WINDOW_MS + 1) * WINDOW_MS
    time.sleep((start - now) / 1000 + 0.01)
    return start


def _send_labelled(http: Any, rows: Any, what: str, *, recalibrate: bool) -> list[str]:
    """One request per row (with a progress bar); the server's request ids, the keys of the labels."""
    from rich.progress import track

    data = recalibrated(rows) if recalibrate else rows
    ids: list[str] = []
    for record in track(data.to_dict(orient="records"), description=f"requests ({what})", console=console, transient=True):
        response = http.post("/predict", json={"records": [record]})
        response.raise_for_status()
        ids.append(response.headers["x-request-id"])
    console.print(f"sent {len(ids)} requests ({what}); their labels arrive")
    return ids


def _retrain(monitor: Any, alert: Any, ctx: Any) -> str:
    """The retraining pipeline: the newest labelled rows as a dataset version, HPO over the pipeline's C, the best
    trained by the quickstart pipeline, gated, registered with lineage; returns the version (it joins as a shadow)."""
    import keel.data
    import keel.registry as registry
    import keel.tune as tune
    from keel.cli import quickstart_pipeline as qp
    from keel.evaluation import gate
    from keel.serve import read_predictions

    logged = read_predictions(monitor.deployment, since=alert.first_window_ms, until=alert.last_window_ms + monitor.window_ms)
    logged = logged[logged["served"] & logged["label"].notna()]
    frame = _frame_of(logged)
    version = keel.data.log(frame, LIVE_DATA, parents=["breast-cancer"], source=f"alert {alert.id}: labelled live traffic",
                            run=False)  # fmt: skip
    console.print(f"  retraining on {version.ref}: {version.row_count} labelled rows of the drifted window")

    def objective(trial: Any) -> float:
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import cross_val_predict

        X, y = frame.drop(columns=["target"]), frame["target"]
        scores = cross_val_predict(qp.make_model("logistic_regression", trial.params), X, y, cv=3, method="predict_proba")
        return float(roc_auc_score(y, scores[:, 1]))

    study = tune.optimize(objective, {"C": tune.loguniform(0.01, 100.0)}, n_trials=6, name="retrain-search",
                          experiment="quickstart-retrain", seed=0)  # fmt: skip
    result = qp.train.run(
        experiment="quickstart-retrain", dataset=version.ref, model="logistic_regression", params=study.best_params
    )
    checked = gate(result.step("evaluate").run_id, ["test_roc_auc >= 0.95"], ctx=ctx)
    console.print(f"  HPO: 6 trials, best C {fmt_num(study.best_params['C'])}; gate test_roc_auc >= 0.95: "
                  + ("[green]pass[/]" if checked.passed else "[red]FAIL[/]"))  # fmt: skip
    if not checked.passed:
        raise RuntimeError("the retrained model did not pass its gate")
    model, example = result.output_of("fit"), result.output_of("split")[1].head(5)
    registered = registry.register(model, RETRAINED, run=result.run_id, input_example=example, datasets=[version.ref],
                                   description=f"retrained after alert {alert.id} ({alert.message})")  # fmt: skip
    return registered.uri


def _frame_of(logged: Any) -> Any:
    import pandas as pd

    inputs = pd.DataFrame(list(logged["inputs"]))
    inputs["target"] = [int(v) for v in logged["label"]]
    return inputs


def _report(home: Path, since: int) -> Path:
    from keel.context import current
    from keel.monitor.report import monitor_report

    store = current().store.monitors
    monitor = store.get_monitor(MONITOR)
    windows = store.windows(MONITOR, since_ms=since)
    alerts = [a for a in store.alerts(monitor=MONITOR) if a.created_at >= since - 60_000]
    path = home / "reports" / f"monitor-{MONITOR}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(monitor_report(monitor, windows, alerts, {a.id: store.actions(a.id) for a in alerts}), encoding="utf-8")
    console.print(f"monitor report: [bold]{esc(path)}[/]")
    return path
