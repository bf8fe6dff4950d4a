"""A monitoring window read once from a deployment's real prediction log (Parquet files in the artifact store,
labels in the store): drift against the model's training data, quality, health, realised and estimated
performance."""

from __future__ import annotations

import time

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
from keel.monitor import Estimator
from keel.monitor.windows import evaluate_window, read_window
from keel.serve import log_labels
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predlog import PredictionLog

NORMAL = int(time.time() * 1000) - 3_600_000  # the first window's start: the module's tests read it again
DRIFTED = NORMAL + 600_000
SIZES = NORMAL + 1_200_000


def _log(ctx: Context, deployment: str, model, X: pd.DataFrame, start_ms: int, uri: str) -> list[str]:
    """Rows as keel serve logs them (one request per row, numeric inputs as matrix rows), written by the log's
    writer thread to Parquet."""
    values = X.to_numpy(dtype=np.float64)
    predicted, proba = model.predict(X), model.predict_proba(X)
    names = tuple(X.columns)
    log = PredictionLog(ParquetSink(deployment, ctx))
    ids = [f"{deployment}-{start_ms}-{i}" for i in range(len(X))]
    log.offer([
        {"request_id": ids[i], "row": 0, "time": start_ms + i, "deployment": deployment, "route": "primary", "model": uri,
         "served": True, "inputs": values[i], "input_names": names, "output": int(predicted[i]), "proba": proba[i],
         "latency_ms": 0.2 + (i % 10) / 10, "replica": "test"}
        for i in range(len(X))
    ])  # fmt: skip
    log.close()
    assert log.written == len(X), log
    return ids


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    home = tmp_path_factory.mktemp("monitor")
    ctx = Context(f"sqlite:///{home / 'keel.db'}", str(home / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(X))  # the file is not in random order
    X, y = X.iloc[order].reset_index(drop=True), y.iloc[order].reset_index(drop=True)
    train, live = X.iloc[:400], X.iloc[400:]
    keel.data.log(train, "cancer-train", ctx=ctx)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train, y.iloc[:400])
    version = registry.register(model, "cancer", input_example=train.head(3), datasets=["cancer-train@1"], ctx=ctx)
    ctx.store.deployments.create("cancer", version.uri)
    yield ctx, model, X, y, live, version.uri
    ctx.close()


def test_a_window_of_normal_traffic_shows_no_drift_and_realised_performance_once_labelled(deployed) -> None:
    ctx, model, X, y, live, uri = deployed
    start = NORMAL
    ids = _log(ctx, "cancer", model, live, start, uri)
    before = evaluate_window("cancer", since=start, until=start + 10_000, ctx=ctx)
    assert before.profile.rows == len(live) and before.performance["labelled_rows"] == 0
    assert before.performance["realised"] is None and before.performance["estimated"]["accuracy"] > 0.8
    assert before.drift is not None and before.drift.drifted == []  # the reference is the model's training data
    assert set(before.quality) == set(X.columns)
    assert before.health["requests"] == len(live) and before.health["latency_p99_ms"] == pytest.approx(1.1, abs=0.01)
    log_labels(ids[:100], [int(v) for v in y.iloc[400:500]], deployment="cancer", ctx=ctx)  # labels arrive later
    after = evaluate_window("cancer", since=start, until=start + 10_000, ctx=ctx)
    assert after.performance["labelled_rows"] == 100
    expected = float((model.predict(live.iloc[:100]) == y.iloc[400:500]).mean())
    assert after.performance["realised"]["accuracy"] == pytest.approx(expected)
    values = after.values()
    assert values["performance.realised.accuracy"] == pytest.approx(expected) and values["drift.share"] == 0.0


def test_a_drifted_window_names_its_columns_and_its_values_out_of_range(deployed) -> None:
    ctx, model, X, _, live, uri = deployed
    start = DRIFTED
    drifted = live.copy()
    drifted["mean radius"] = drifted["mean radius"] * 1.6  # beyond the training range for most rows
    _log(ctx, "cancer", model, drifted, start, uri)
    result = evaluate_window("cancer", since=start, until=start + 10_000, ctx=ctx, estimator=None)
    assert result.drift is not None and "mean radius" in result.drift.drifted
    assert len(result.drift.drifted) <= 3
    out_of_range = result.quality["mean radius"]["out_of_range_share"]
    train_max = X.iloc[:400]["mean radius"].max()
    assert out_of_range == pytest.approx(float((drifted["mean radius"] > train_max).mean()), abs=0.02)
    assert result.quality["mean texture"]["out_of_range_share"] <= 0.05
    table = read_window("cancer", since=start, until=start + 10_000, ctx=ctx)
    assert table.num_rows == len(live) and "mean radius" in table.column_names and "proba1" in table.column_names


def test_an_estimator_fitted_on_labelled_reference_data_is_used(deployed) -> None:
    ctx, model, X, y, _, _ = deployed
    estimator = Estimator().fit(model.predict_proba(X.iloc[:400])[:, 1], y.iloc[:400])
    result = evaluate_window("cancer", since=NORMAL, until=NORMAL + 10_000, ctx=ctx, estimator=estimator, labels=False)
    assert result.performance["estimated"]["accuracy"] == pytest.approx(
        estimator.estimate(model.predict_proba(X.iloc[400:])[:, 1], model.predict(X.iloc[400:]))["accuracy"]
    )


def test_predictions_drift_against_a_baseline_window_and_outliers_are_counted(deployed) -> None:
    ctx, _, X, _, live, _ = deployed
    normal = evaluate_window("cancer", since=NORMAL, until=NORMAL + 10_000, ctx=ctx)
    assert normal.prediction_drift is None  # no baseline given
    same = evaluate_window("cancer", since=NORMAL, until=NORMAL + 10_000, ctx=ctx, baseline=normal.profile)
    assert same.prediction_drift is not None and same.prediction_drift.drifted == []
    assert {c.column for c in same.prediction_drift.columns} == {"output", "proba1"}
    radius = evaluate_window("cancer", since=DRIFTED, until=DRIFTED + 10_000, ctx=ctx, baseline=normal.profile)
    assert radius.prediction_drift is not None and radius.prediction_drift.drifted == []  # one input: answers hold
    sizes = live.copy()
    for column in ("mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter", "worst area"):
        sizes[column] = sizes[column] * 1.6  # the instrument reads every size larger: the answers move
    _log(ctx, "cancer", deployed[1], sizes, SIZES, deployed[5])
    shifted = evaluate_window("cancer", since=SIZES, until=SIZES + 10_000, ctx=ctx, baseline=normal.profile)
    assert shifted.prediction_drift is not None and "proba1" in shifted.prediction_drift.drifted
    values = shifted.values()
    assert values["prediction_drift.proba1.drifted"] == 1.0 and values["prediction_drift.proba1.score"] > 0.1
    # Tukey's fences from the training quartiles: radius x1.6 puts many rows beyond them, as the sketch counts
    train, moved = X.iloc[:400]["mean radius"], live["mean radius"] * 1.6
    q1, q3 = train.quantile(0.25), train.quantile(0.75)
    beyond = float(((moved > q3 + 1.5 * (q3 - q1)) | (moved < q1 - 1.5 * (q3 - q1))).mean())
    assert radius.quality["mean radius"]["outlier_share"] == pytest.approx(beyond, abs=0.03) and beyond > 0.2
    assert normal.quality["mean radius"]["outlier_share"] < 0.05
