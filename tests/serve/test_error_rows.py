"""A request the model fails on is logged too (status 500, no outputs), so that monitors see the error rate."""

from __future__ import annotations

import httpx
import numpy as np

import keel.registry as registry
from keel.context import Context
from keel.serve import create_app, read_predictions
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predlog import PredictionLog
from keel.testing.services import serve_app, wait_ready


class Fussy:
    """Raises on a row whose first value is negative."""

    def predict(self, X):
        values = np.asarray(X, dtype=float)
        if (values[:, 0] < 0).any():
            raise ValueError("negative input")
        return np.ones(len(values), dtype=np.int64)


def test_failed_answers_are_logged_with_their_status_and_no_outputs(tmp_path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    registry.register(Fussy(), "fussy", input_example=np.ones((3, 2)), ctx=ctx)
    ctx.store.deployments.create("fussy", "models:/fussy/1")
    log = PredictionLog(ParquetSink("fussy", ctx))
    with serve_app(create_app("fussy", ctx=ctx, prediction_log=log)) as url:
        wait_ready(url)
        statuses = [httpx.post(f"{url}/predict", json={"instances": [[v, 1.0]]}).status_code for v in (1.0, -1.0, 2.0, -2.0)]
    assert statuses == [200, 500, 200, 500]
    frame = read_predictions("fussy", ctx=ctx, labels=False)
    assert sorted(frame["status"].tolist()) == [200, 200, 500, 500]
    failed = frame[frame["status"] == 500]
    assert failed["output"].isna().all() and failed["served"].all() and (failed["latency_ms"] > 0).all()
    assert sorted(v[0] for v in failed["inputs"]) == [-2.0, -1.0]  # the inputs that made the model raise
    ctx.close()
