"""``keel quickstart``: the whole (current) lifecycle on the embedded default, in the current folder.

1. data: version the breast-cancer dataset bundled with scikit-learn, validated by an inferred suite;
2. labels: a simulated crowd labels a sample under keel's controls (``keel.cli.quickstart_label``): qualification,
   gold rows, agreement, a flagged spammer left out, Dawid-Skene consensus, expert review, labels exported as data;
3. experiments: a baseline trained by a pipeline, a small parallel HPO (each trial a run with
   per-fold metrics), the best configuration trained by the same pipeline (cached steps reused),
   and a gate of the candidate against the baseline;
4. models: both registered, promoted through gates, production exported to ONNX (edge bundle, model card);
5. drift: a check between two halves of the data and against a perturbed copy;
6. deployment: production served on loopback, the other model added as a shadow while it serves, the data sent
   through, labels recorded, the two compared live (agreement, latency, metrics with confidence intervals) and the
   shadow promoted only when it is significantly better; the prediction log read back;
7. monitoring: normal then drifted traffic watched window by window; the drift alert retrains (HPO, gate) and the
   new model joins as a shadow, is compared live and promoted (``keel.cli.quickstart_monitor``);
8. fairness and privacy: production's per-group metrics and a fairness gate, a mitigated version, DP training
   against a privacy budget, federated training over three sites (``keel.cli.quickstart_fairness``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.output import STEP_STATUS, console, esc, fmt_num
from keel.core.actor import current_actor
from keel.core.config import load_settings
from keel.core.errors import MissingExtra

EXPERIMENT = "quickstart"
TRIALS = 8


def quickstart(
    trials: int = typer.Option(TRIALS, help="HPO trials."),
    executor: str = typer.Option("process", help="Where trials run: inline, process or ray."),
) -> None:
    """Version data, train a baseline, tune, gate the best model, check drift: the lifecycle in one go."""
    _check_options(trials, executor)  # before anything is logged or trained
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MissingExtra("scikit-learn", "quickstart") from None
    from sklearn.datasets import load_breast_cancer

    import keel.data

    settings = load_settings()
    started = time.perf_counter()
    console.print(f"[bold]keel quickstart[/] — tracking into [cyan]{esc(settings.store)}[/]")
    console.print("\n[bold]1. data[/]")
    dataset = _ingest(load_breast_cancer(as_frame=True).frame, settings.home)
    console.print("\n[bold]2. labels[/]")
    from keel.cli.quickstart_label import PROJECT, labeling

    label_report = labeling(keel.data.get(dataset, run=False), dataset.ref, settings.home)
    console.print("\n[bold]3. experiments[/]")
    candidate, baseline, study, pipelines = _experiments(executor, trials, settings.home)
    console.print("\n[bold]4. models[/]")
    bundle, card = _models(dataset.ref, pipelines, settings.home)
    console.print("\n[bold]5. drift[/]")
    drift_report = _drift_check(keel.data.get(dataset, run=False), settings.home)
    console.print("\n[bold]6. deployment[/]")
    comparison_report = _deploy(keel.data.get(dataset, run=False), settings.home)
    console.print("\n[bold]7. monitoring[/]")
    from keel.cli.quickstart_monitor import MONITOR, monitoring_loop

    monitor_report = monitoring_loop(keel.data.get(dataset, run=False), settings.home)
    console.print("\n[bold]8. fairness and privacy[/]")
    from keel.cli.quickstart_fairness import fairness_and_privacy

    fairness_report = fairness_and_privacy(keel.data.get(dataset, run=False), dataset.ref, settings.home)
    console.print("\n[bold]9. governance[/]")
    _audit()
    console.print(f"\ndone in {time.perf_counter() - started:.1f}s")
    console.print("\n[bold]Look further[/]")
    for command, what in (
        ("keel ui", "everything below in the browser: runs, curves, datasets, models, deployments, audit"),
        ("keel runs list -e quickstart", "every run: pipeline steps, trials, the study"),
        (f"keel runs compare {baseline[:12]} {candidate[:12]}", "baseline against the tuned model"),
        (f"keel runs show {study[:12]}", "the study: best trial, its params and metrics, its artifacts"),
        (f"keel open {study[:12]} study.html", "the study's history and importances in the browser"),
        ("keel runs list -f 'metrics.value > 0.99' -o 'metrics.value DESC'", "search the trials"),
        ("keel models list", "registered models and their aliases"),
        ("keel models history breast-cancer", "who moved production, when and why"),
        (f"open {card}", "the model card, written from lineage"),
        (f"cd {bundle} && python test_predictor.py", "the ONNX edge bundle tests itself with numpy + onnxruntime only"),
        (f"keel data show {dataset.ref}", "the dataset: schema, profile, validations, lineage"),
        (f"keel label status {PROJECT}", "the label project: progress, agreement, annotator scores, review queue"),
        (f"open {label_report}", "the labeling report: agreement over time, confusion between annotators, audits"),
        (f"keel lineage dataset {PROJECT}.labels", "the exported labels: from the data, through the project, to the dataset"),
        (f"open {drift_report}", "reference-vs-current histograms of every column"),
        ("keel deploy history breast-cancer", "the deployment's routes and every change to them"),
        ("keel deploy compare breast-cancer --since 1h", "production and its shadow side by side, live"),
        (f"open {comparison_report}", "the comparison: agreement, latency, output distributions, metrics with CIs"),
        ("keel monitor status", "every monitor: newest window, drift, accuracy, alerts firing"),
        (f"keel monitor alerts {MONITOR}", "the drift alert and what it did (retrain, shadow)"),
        (f"open {monitor_report}", "the monitor's time series, per-feature drift, alerts and actions"),
        ("keel deploy history breast-cancer-live", "why the primary changed: the alert, the retrained shadow, the promotion"),
        (f"open {fairness_report}", "production's per-group metrics by age band, the disparities, the worst group"),
        ("keel gate models:/breast-cancer@production --rule 'fairness.equalized_odds_difference <= 0.2'", "a fairness gate"),
        (f"keel privacy status {dataset.ref}", "the data's privacy budget, each DP run's spend, what is left"),
        ("keel serve breast-cancer", "serve the deployment: /v2/models/breast-cancer/infer, /predict, /metrics, /docs"),
        ("keel deploy package breast-cancer -o deploy/", "a Dockerfile and Kubernetes manifests for it"),
        ("keel audit log --limit 20", "who changed what: every change above, hash-chained"),
        ("keel audit verify", "the chain checked end to end: an edited, deleted or reordered event is named"),
        ("keel users create ana && keel roles grant ana editor && keel tokens create ana", "a user, a role, a token"),
        ("keel server", "REST API and UI on http://127.0.0.1:5050 (/ui/, docs at /docs; tokens once users exist)"),
    ):
        console.print(f"  [cyan]{esc(command)}[/]\n      {what}")  # commands hold paths: text, not markup
    console.print(f"[dim]everything is stored in {esc(settings.home)}[/]")


def _check_options(trials: int, executor: str) -> None:
    """Reject bad options before the first dataset is logged: a late refusal leaves half a lifecycle behind."""
    from keel.core.errors import InvalidArgument
    from keel.pipelines.executors import EXECUTORS

    if trials < 1:
        raise InvalidArgument.for_field("--trials", trials, "a positive integer")
    if executor not in EXECUTORS:
        raise InvalidArgument.for_field("--executor", executor, f"one of {', '.join(EXECUTORS)}")


def _audit() -> None:
    """Every change of the steps above is in the store's audit log, each event chained to the one before."""
    from collections import Counter

    from keel.tracking.fluent import get_client

    audit = get_client().store.audit
    problem = audit.verify()
    head = audit.head()
    counts = Counter(event.entity for event in audit.all_events())
    summary = ", ".join(f"{n} {entity}" for entity, n in counts.most_common(5))
    if problem is None and head is not None:
        console.print(f"audit log: {head.seq} events ({esc(summary)}), chain verified; head {head.hash[:12]}")
        console.print(f"every change was recorded as [bold]{esc(current_actor())}[/]: the actor is who acts, never a field")
    else:
        console.print(f"[red]audit log: {esc(str(problem))}[/]")


def _print_steps(result: Any, title: str) -> None:
    cells = ", ".join(f"{s.node} {STEP_STATUS.get(s.status, s.status)}" for s in result.steps)
    console.print(f"{title}: {cells}")


def _experiments(executor: str, trials: int, home: Path) -> tuple[str, str, str, tuple[Any, Any]]:
    """Baseline pipeline, parallel HPO, tuned pipeline, gate. Returns (candidate, baseline, study) run ids and
    the two pipeline results."""
    import keel.tune as tune
    from keel.cli import quickstart_pipeline as qp
    from keel.cli.gate import record_gate
    from keel.evaluation import gate
    from keel.tracking.fluent import get_client
    from keel.tracking.report import runs_report

    client = get_client()
    base = qp.train.run(experiment=EXPERIMENT, model="logistic_regression", params={"C": 1.0})
    _print_steps(base, "baseline pipeline (logistic regression)")
    baseline = base.step("evaluate").run_id
    console.print(f"baseline test ROC AUC {fmt_num(base.output['test_roc_auc'])}")

    space = {
        "model": tune.choice(list(qp.MODELS)),
        "C": tune.loguniform(0.01, 100.0),
        "n_estimators": tune.intrange(30, 120),
        "max_depth": tune.intrange(2, 6),
    }
    with console.status(f"tuning: {trials} trials, {qp.FOLDS}-fold CV each, on {executor}"):
        study = tune.optimize(
            qp.cv_objective, space, n_trials=trials, name="model-search", experiment=EXPERIMENT, executor=executor, seed=0
        )
    title = f"HPO: {trials} trials ({executor}), best first"
    if study.resumed_trials:  # a rerun in the same folder adds trials to the same study
        title = f"HPO: {trials} new trials ({executor}) on top of {study.resumed_trials} earlier ones, best first"
    table = Table(title=title, header_style="bold")
    for col in ("trial", "model", "C", "trees", "depth", "cv ROC AUC"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for t in sorted(study.trials, key=lambda t: -(t.value or 0.0)):
        p = t.params
        table.add_row(str(t.number), p["model"], fmt_num(p["C"]), str(p["n_estimators"]), str(p["max_depth"]), fmt_num(t.value))
    console.print(table)
    best = study.best_params
    tuned = qp.train.run(experiment=EXPERIMENT, model=best["model"], params=best)
    _print_steps(tuned, f"tuned pipeline ({best['model']})")
    candidate = tuned.step("evaluate").run_id
    result = gate(candidate, ["test_roc_auc >= 0.95", "test_roc_auc >= baseline - 0.01"], baseline=baseline, ctx=client.context)
    record_gate(client, result)  # keel runs list shows the metric that decided it
    for check in result.checks:
        verdict = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        console.print(
            f"gate  {check.rule:<34} candidate {fmt_num(check.candidate)}  threshold {fmt_num(check.threshold)}  {verdict}"
        )
    console.print(
        "[bold green]gate passed: the tuned model may replace the baseline[/]"
        if result.passed
        else "[bold red]gate failed[/]: the tuned model does not beat the baseline on held-out data; keep the baseline"
    )
    report = home / "reports" / "quickstart.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    trial_runs = [t.run_id for t in sorted(study.trials, key=lambda t: -(t.value or 0.0))]
    report.write_text(runs_report(client, trial_runs, title="keel quickstart: HPO trials (fold-by-fold CV ROC AUC)"))
    console.print(f"trials with their fold curves: [bold]{esc(report)}[/]; study history: keel runs show {study.run_id[:12]}")
    return candidate, baseline, study.run_id, (base, tuned)


def _models(dataset_ref: str, pipelines: tuple[Any, Any], home: Path) -> tuple[Path, Path]:
    """Register both models, promote through gates, export production as an ONNX edge bundle, write its card."""
    import keel.data
    import keel.registry as registry

    # both pipelines split with the same seed: their test split is the rows neither model was fitted on
    _, X_test, _, y_test = pipelines[0].output_of("split")
    holdout = keel.data.log(X_test.assign(target=y_test), "breast-cancer-test", parents=[dataset_ref],
                            source="the training pipeline's test split", run=False)  # fmt: skip
    absolute = ["test_roc_auc >= 0.95"]
    rules = [*absolute, "test_roc_auc >= baseline - 0.01"]  # baseline: the version production points to
    versions = []
    for result in pipelines:
        model, example = result.output_of("fit"), result.output_of("split")[1].head(5)
        run_id = result.run_id  # the pipeline run: its params and its steps' test metrics are the version's
        versions.append(registry.register(model, "breast-cancer", run=run_id, input_example=example, datasets=[dataset_ref],
                                          holdout=holdout.ref))  # fmt: skip
    first, second = versions
    # the baseline model goes first, on absolute rules: in a fresh folder there is no production to compare with
    registry.promote("breast-cancer", first.version, "production", rules=absolute, require_valid_data=True,
                     reason="baseline: first model to pass the gates")  # fmt: skip
    console.print(f"registered {first.uri} ({first.flavor}) and {second.uri}; production -> v{first.version}")
    try:
        registry.promote(
            "breast-cancer", second.version, "production", rules=rules, require_valid_data=True, reason="tuned model"
        )
        console.print(f"production -> v{second.version}: the tuned model passed the gates")
    except registry.PromotionRefused as exc:
        registry.promote("breast-cancer", second.version, "challenger", force=True, reason="tuned, but refused for production")
        console.print(f"[yellow]promotion of v{second.version} refused[/]: {esc(exc.message.split(': ', 1)[-1])}")
        console.print(f"v{second.version} is the challenger; production stays v{first.version}")
    production = registry.resolve("models:/breast-cancer@production")
    with console.status(f"exporting production to ONNX and checking parity on {holdout.ref}"):
        folder = registry.edge_bundle(production.uri, home / "bundles" / "breast-cancer")
    onnx_version = registry.resolve("models:/breast-cancer")
    parity = onnx_version.signature.get("parity", {})
    console.print(
        f"ONNX export {onnx_version.uri}: label agreement {parity.get('onnx_label_agreement', 0):.2%}, "
        f"max probability difference {fmt_num(parity.get('onnx_max_proba_diff'))} on the held-out rows of {holdout.ref}; "
        f"edge bundle [bold]{esc(folder)}[/]"
    )
    card, _ = registry.write_card(
        "breast-cancer", production.version, home / "cards",
        purpose="Flag breast-tumour measurements that look malignant, for a second look by a clinician.",
        intended_use="Decision support on the 30 measurements of the Wisconsin dataset; never a diagnosis on its own.",
        limitations="Trained on 569 historical cases from one source; not validated on other populations or instruments.",
    )  # fmt: skip
    console.print(f"model card: [bold]{esc(card)}[/]")
    return folder, card


def _ingest(frame: Any, home: Path) -> Any:
    """Log the dataset after validating it against a proposed suite, kept as YAML for review."""
    import keel.data

    suite = keel.data.infer_suite(frame, "breast-cancer")
    suite_path = suite.save(home / "suites" / "breast-cancer.yaml")
    version = keel.data.log(frame, "breast-cancer", source="sklearn.datasets.load_breast_cancer", suite=suite, run=False)
    record = keel.get_client().store.datasets.list_validations(version.id)[0]
    console.print(
        f"dataset [bold]{version.ref}[/]: {version.row_count} rows x {len(version.schema)} columns, "
        f"content {version.content_hash[:12]}, profiled and stored as Parquet"
    )
    console.print(
        f"validated against {len(suite.checks)} proposed checks ({suite_path}): "
        + ("[green]passed[/]" if record.passed else f"[red]{record.errors} failed[/]")
    )
    return version


def _drift_check(frame: Any, home: Path) -> Path:
    """Two halves of the data should agree; a copy with recalibrated sensors should not."""
    import numpy as np

    import keel.data
    from keel.data.report import drift_html

    first = frame.sample(frac=0.5, random_state=1)
    second = frame.drop(first.index)
    reference = keel.data.log(first, "breast-cancer-reference", parents=["breast-cancer"], run=False)
    stable = keel.data.drift(reference, second)
    shifted = second.copy()
    shifted["mean radius"] *= 1.15  # a recalibrated instrument
    shifted["mean texture"] += np.random.default_rng(0).normal(3.0, 1.0, len(shifted))
    drifted = keel.data.drift(reference, shifted)
    console.print(
        f"other half against {reference.ref} (stored profile): {len(stable.drifted)} of {len(stable.columns)} columns drifted"
    )
    console.print(
        f"recalibrated copy: [red]{len(drifted.drifted)}[/] drifted: {', '.join(drifted.drifted)} "
        f"({', '.join(drifted.column(c).test for c in drifted.drifted)})"
    )
    path = home / "reports" / "drift.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(drift_html(drifted, "keel quickstart: recalibrated copy against the reference half"))
    console.print(f"drift report: [bold]{esc(path)}[/]")
    return path


def _deploy(frame: Any, home: Path) -> Path:
    """Deploy production, serve it, add the other model as a shadow, send the data through, label it, compare the
    two live and promote the shadow only if it is significantly better; returns the comparison report."""
    import keel.registry as registry
    from keel.context import current
    from keel.core.clock import now_ms
    from keel.core.errors import NotFound
    from keel.serve import compare, create_app, log_labels, read_predictions, serving

    store = current().store
    name = "breast-cancer"
    try:
        deployment = store.deployments.get(name)
        console.print(f"deployment {name} kept from an earlier run: primary {esc(deployment.primary)}")
    except NotFound:
        deployment = store.deployments.create(name, f"models:/{name}@production", reason="quickstart: serve production")
        console.print(f"deployment {name}: primary {deployment.primary} (follows the alias; recorded with its history)")
    primary = registry.resolve(deployment.primary)
    native = [v for v in store.models.list_versions(name) if v.flavor != "onnx"]
    shadow = next((f"models:/{name}/{v.version}" for v in reversed(native) if v.version != primary.version), None)
    features, labels = frame.drop(columns=["target"]), frame["target"].tolist()
    records = features.to_dict(orient="records")
    app = create_app(name, poll_interval=0.2)
    with serving(app) as url, httpx_client(url) as http:
        _wait_ready(http, name)
        latencies, versions = _send(http, records[:100], "production only")
        console.print(
            f"served {name} over HTTP: 100 single-row requests, p50 {statistics.median(latencies) * 1000:.2f} ms, "
            f"answered by {', '.join(sorted(versions))}"
        )
        if shadow is None:
            return _comparison_report(compare(name), home)
        current_routes = store.deployments.get(name)
        if shadow not in current_routes.shadows:
            store.deployments.set_routes(name, shadows=[shadow], reason="quickstart: compare the other model live")
        _wait_for_shadow(app, shadow)
        console.print(f"shadow {shadow} added: it sees the requests the server has capacity to spare for, off the response path")
        since = now_ms()
        _, _ = _send(http, records, "production + shadow")
    request_ids = _request_ids_since(name, since)
    log_labels(list(request_ids), [labels[i] for i in request_ids.values()], deployment=name)
    console.print(f"labels arrived for {len(request_ids)} requests (keel.serve.log_labels)")
    comparison = compare(name, since=since)
    from keel.cli.deploy_compare import print_comparison

    print_comparison(comparison)
    report = _comparison_report(comparison, home)
    challenger = next((c for c in comparison.challengers if c.model.startswith(f"models:/{name}/")), None)
    verdict = challenger.metrics[0].verdict if challenger is not None and challenger.metrics else "no verdict"
    if verdict == "better":
        d = store.deployments.get(name)
        others = [s for s in d.shadows if s != shadow]
        store.deployments.set_routes(
            name, primary=shadow, shadows=others, expected_updated_at=d.updated_at, reason="quickstart: significantly better live"
        )
        console.print(f"[green]promoted[/] {shadow}: significantly better on live traffic")
    else:
        console.print(f"[yellow]not promoted[/]: {esc(challenger.verdict if challenger else verdict)}")
    logged = read_predictions(name, since=since, labels=False)
    console.print(
        f"prediction log: {len(logged):,} rows (primary and shadow paired by request id) as Parquet in "
        f"[bold]{esc(current().settings.artifacts or home / 'artifacts')}[/], indexed in the store; "
        f"read it with keel.serve.read_predictions({name!r})"
    )
    return report


def httpx_client(url: str) -> Any:
    import httpx

    return httpx.Client(base_url=url, timeout=30)


def _wait_ready(http: Any, name: str) -> None:
    from keel.core.errors import StoreUnavailable

    deadline = time.monotonic() + 120
    while http.get("/v2/health/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise StoreUnavailable(f"the deployment {name} did not become ready")
        time.sleep(0.1)


def _send(http: Any, records: list[dict[str, Any]], what: str) -> tuple[list[float], set[str]]:
    """One request per record, with a progress bar; latencies and the versions that answered."""
    from rich.progress import track

    latencies, versions = [], set()
    for row in track(records, description=f"requests ({what})", console=console, transient=True):
        t0 = time.perf_counter()
        response = http.post("/predict", json={"records": [row]})
        latencies.append(time.perf_counter() - t0)
        response.raise_for_status()
        versions.add(response.headers.get("keel-model-version", "?"))
    return latencies, versions


def _wait_for_shadow(app: Any, shadow: str) -> None:
    """The server follows the deployment: wait until the table in service has the shadow (loaded and warm)."""
    deadline = time.monotonic() + 60
    while not any(r.uri == shadow for r in (app.state.serving.table.shadows if app.state.serving.table else ())):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not pick up the shadow {shadow}")
        time.sleep(0.05)


def _request_ids_since(name: str, since: int) -> dict[str, int]:
    """The request ids the primary answered since ``since``, each with the index of the row it sent (from the log:
    the requests went in dataset order)."""
    from keel.serve import read_predictions

    served = read_predictions(name, since=since, labels=False)
    served = served[served["served"]].sort_values("time", kind="stable")
    return {rid: i for i, rid in enumerate(dict.fromkeys(served["request_id"]))}


def _comparison_report(comparison: Any, home: Path) -> Path:
    path = home / "reports" / f"deployment-{comparison.deployment}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comparison.to_html())
    console.print(f"comparison report: [bold]{esc(path)}[/]")
    return path
