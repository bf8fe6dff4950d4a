"""``keel quickstart``: the whole (current) lifecycle on the embedded default, in the current folder.

Trains several scikit-learn models on the breast-cancer dataset bundled with scikit-learn,
tracks every run (params, per-fold and per-stage metrics, the model file, code and
environment) as children of one sweep run, and prints a comparison.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from keel.cli.output import console, fmt_num, runs_table
from keel.core.config import load_settings
from keel.core.errors import MissingExtra

EXPERIMENT = "quickstart"
FOLDS = 5


def _candidates() -> list[tuple[str, dict[str, Any], Any]]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out: list[tuple[str, dict[str, Any], Any]] = []
    for c in (0.1, 1.0, 10.0):
        params = {"model": "logistic_regression", "C": c}
        out.append(
            (
                f"logreg-C{c:g}",
                params,
                lambda c=c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)),
            )
        )
    for depth in (4, None):
        params = {"model": "random_forest", "n_estimators": 150, "max_depth": depth}
        out.append(
            (
                f"forest-depth{depth}",
                params,
                lambda d=depth: RandomForestClassifier(n_estimators=150, max_depth=d, random_state=0, n_jobs=1),
            )
        )
    params = {"model": "gradient_boosting", "n_estimators": 120, "learning_rate": 0.1, "max_depth": 2}
    out.append(
        (
            "gboost",
            params,
            lambda: GradientBoostingClassifier(n_estimators=120, learning_rate=0.1, max_depth=2, random_state=0),
        )
    )
    return out


def quickstart(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Less output."),
) -> None:
    """Train and track several models on a bundled dataset, then compare them."""
    try:
        import numpy as np
        from sklearn.datasets import load_breast_cancer
        from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
        from sklearn.model_selection import StratifiedKFold, train_test_split
    except ImportError:
        raise MissingExtra("scikit-learn", "quickstart") from None
    import keel
    import keel.data

    settings = load_settings()
    console.print(f"[bold]keel quickstart[/] — tracking into [cyan]{settings.store}[/]")
    console.print("\n[bold]1. data[/]")
    dataset = _ingest(load_breast_cancer(as_frame=True).frame, settings.home)
    console.print("\n[bold]2. experiments[/]")
    frame = keel.data.get(dataset, run=False)
    X, y = frame.drop(columns=["target"]).to_numpy(), frame["target"].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    console.print(f"{X.shape[0]} rows x {X.shape[1]} features; {len(y_test)} held out for testing")
    candidates = _candidates()
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(X_train, y_train))
    child_ids: list[str] = []
    started = time.perf_counter()
    with keel.start_run(experiment=EXPERIMENT, name="model-sweep", tags={"keel.quickstart": "1"}) as sweep:
        keel.data.get(dataset)  # recorded as the sweep's input: lineage from data to models
        sweep.log_params({"dataset": "sklearn.breast_cancer", "folds": FOLDS, "candidates": len(candidates)})
        with Progress(
            TextColumn("[progress.description]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        ) as progress:
            task = progress.add_task("training", total=len(candidates) * (FOLDS + 1))
            for name, params, make in candidates:
                progress.update(task, description=name)
                with keel.start_run(name=name, params=params) as run:
                    scores: dict[str, list[float]] = {"accuracy": [], "roc_auc": [], "f1": []}
                    for fold, (tr, va) in enumerate(folds):
                        model = make().fit(X_train[tr], y_train[tr])
                        proba = model.predict_proba(X_train[va])[:, 1]
                        pred = (proba >= 0.5).astype(int)
                        fold_scores = {
                            "accuracy": accuracy_score(y_train[va], pred),
                            "roc_auc": roc_auc_score(y_train[va], proba),
                            "f1": f1_score(y_train[va], pred),
                        }
                        for key, value in fold_scores.items():
                            scores[key].append(float(value))
                            run.log_metric(f"fold_{key}", float(value), step=fold)
                        progress.advance(task)
                    model = make().fit(X_train, y_train)
                    if hasattr(model, "train_score_"):  # boosting: the training loss per stage, a real curve
                        for stage, loss in enumerate(model.train_score_):
                            run.log_metric("train_loss", float(loss), step=stage)
                    proba = model.predict_proba(X_test)[:, 1]
                    run.log_metrics({f"cv_{k}": float(np.mean(v)) for k, v in scores.items()})
                    run.log_metrics({f"cv_{k}_std": float(np.std(v)) for k, v in scores.items()})
                    run.log_metrics(
                        {
                            "test_accuracy": float(accuracy_score(y_test, (proba >= 0.5).astype(int))),
                            "test_roc_auc": float(roc_auc_score(y_test, proba)),
                        }
                    )
                    with tempfile.TemporaryDirectory() as tmp:
                        path = os.path.join(tmp, "model.pkl")
                        with open(path, "wb") as fh:
                            pickle.dump(model, fh)
                        run.log_artifact(path)
                    child_ids.append(run.id)
                    progress.advance(task)
        client = keel.get_client()
        children = [client.get_run(r) for r in child_ids]
        best = max(children, key=lambda r: r.metric("cv_roc_auc") or 0.0)
        sweep.log_metrics({"best_cv_roc_auc": best.metric("cv_roc_auc") or 0.0})
        sweep.set_tags({"best_run": best.id})
    elapsed = time.perf_counter() - started
    children.sort(key=lambda r: -(r.metric("cv_roc_auc") or 0.0))
    console.print(
        runs_table(
            children,
            ["cv_roc_auc", "cv_accuracy", "test_roc_auc"],
            [],
            title=f"{len(children)} models, {FOLDS}-fold cross-validation (best first)",
            compact=True,
        )
    )
    console.print(
        f"best: [bold green]{best.name}[/] (cv ROC AUC {fmt_num(best.metric('cv_roc_auc'))}, "
        f"test ROC AUC {fmt_num(best.metric('test_roc_auc'))}) in {elapsed:.1f}s"
    )
    from keel.tracking.report import runs_report

    report = settings.home / "reports" / "quickstart.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(runs_report(client, [r.id for r in children], title="keel quickstart: model sweep"))
    console.print(f"report with metric curves: [bold]{report}[/] (offline HTML)")
    console.print("\n[bold]3. drift[/]")
    drift_report = _drift_check(frame, settings.home)
    console.print("\n[bold]Look further[/]")
    for command, what in (
        ("keel runs list", "all runs, newest first"),
        (f"keel runs show {best.id[:12]}", "params, metrics, artifacts, code, environment"),
        (f"keel runs compare {children[0].id[:12]} {children[-1].id[:12]}", "best against worst"),
        ("keel runs list -f 'metrics.cv_roc_auc > 0.99' -o 'metrics.cv_roc_auc DESC'", "search"),
        (f"keel data show {dataset.ref}", "the dataset: schema, profile, validations, lineage"),
        (f"open {drift_report}", "reference-vs-current histograms of every column"),
        ("keel server", "REST API on http://127.0.0.1:5050 (docs at /docs)"),
    ):
        console.print(f"  [cyan]{command}[/]\n      {what}")
    console.print(f"[dim]everything is stored in {settings.home}[/]")


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
    console.print(f"drift report: [bold]{path}[/]")
    return path
