"""The training data's suite (kept with its validation record when the dataset was logged) applied to a window's
live inputs: each check's failing share, and how many error-level checks failed."""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import keel.data
import keel.registry as registry
from keel.context import Context
from keel.monitor.windows import evaluate_window, reference_suite
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predlog import PredictionLog


def test_the_training_suite_judges_live_inputs(tmp_path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    train = X.iloc[::2]
    suite = keel.data.infer_suite(train, "cancer-train")
    keel.data.log(train, "cancer-train", suite=suite, ctx=ctx)
    found = reference_suite("cancer-train@1", ctx)
    assert found is not None and found.to_dict() == suite.to_dict()  # kept with the validation record
    assert reference_suite("nothing@1", ctx) is None
    model = LogisticRegression(max_iter=5000).fit(train, y.iloc[::2])
    version = registry.register(model, "cancer", input_example=train.head(3), datasets=["cancer-train@1"], ctx=ctx)
    ctx.store.deployments.create("live", version.uri)
    live = X.iloc[1::2].copy()
    live["mean radius"] = live["mean radius"] * 3  # far outside the ranges the suite inferred
    start = int(time.time() * 1000) - 3_600_000
    values, proba = live.to_numpy(dtype=np.float64), model.predict_proba(live)
    log = PredictionLog(ParquetSink("live", ctx))
    log.offer([
        {"request_id": f"r{i}", "row": 0, "time": start + i, "deployment": "live", "route": "primary", "model": version.uri,
         "served": True, "inputs": values[i], "input_names": tuple(live.columns), "output": int(proba[i, 1] > 0.5),
         "proba": proba[i], "latency_ms": 0.3, "replica": "t", "status": 200}
        for i in range(len(live))
    ])  # fmt: skip
    log.close()
    result = evaluate_window("live", since=start, until=start + 10_000, ctx=ctx)
    assert result.quality["suite"]["failed_checks"] >= 1
    radius = {k: v for k, v in result.quality["mean radius"].items() if k.startswith("suite_")}
    assert radius and max(radius.values()) > 0.5  # most rows fail the range the training data had
    texture = {k: v for k, v in result.quality["mean texture"].items() if k.startswith("suite_")}
    assert texture and max(texture.values()) < 0.05
    assert result.values()["quality.suite.failed_checks"] == result.quality["suite"]["failed_checks"]
    ctx.close()


def test_a_dataset_logged_without_a_suite_has_none(tmp_path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    import pandas as pd

    keel.data.log(pd.DataFrame({"x": [1.0, 2.0]}), "plain", ctx=ctx)
    assert reference_suite("plain@1", ctx) is None
    ctx.close()
