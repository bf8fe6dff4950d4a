"""The edges of serving found in review: a batch never hands one client another's rows, a server whose first load
failed recovers by itself, shadows have queues of their own, client input never turns into a 500, sticky keys
work in every body shape, large integers reach the model unchanged, an alias move wakes the server at once."""

from __future__ import annotations

import os
import threading
import time

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import keel.registry as registry
from keel.context import Context
from keel.serve import PredictionLog, create_app
from keel.serve.parquet_sink import ParquetSink
from keel.testing.services import serve_app, wait_ready


class DropsFirstRow:
    """Answers one row fewer than it is given when given several: a model whose rows cannot be matched up."""

    def predict(self, X):
        values = np.asarray(X, dtype=float)[:, 0]
        return values[1:] if len(values) > 1 else values


class Echo:
    """Answers the first input column as it received it (to see what reached the model)."""

    def predict(self, X):
        return np.asarray(X.iloc[:, 0] if hasattr(X, "iloc") else np.asarray(X)[:, 0])


@pytest.fixture
def ctx(tmp_path):
    context = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    yield context
    context.close()


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y, LogisticRegression(max_iter=5000).fit(X, y)


def test_a_batch_answered_with_the_wrong_number_of_rows_is_never_split_across_clients(ctx) -> None:
    registry.register(DropsFirstRow(), "dropper", input_example=np.ones((1, 2)), ctx=ctx)
    answers: dict[int, httpx.Response] = {}
    with serve_app(create_app("models:/dropper/1", ctx=ctx, max_wait=0.05, prediction_log=None)) as url:
        wait_ready(url)

        def call(i: int) -> None:
            answers[i] = httpx.post(f"{url}/predict", json={"instances": [[float(i), 0.0]]}, timeout=30)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # batched, the model drops a row: the batch is refused and each request answered alone, with its own value
    assert {i: r.json()["predictions"] for i, r in answers.items()} == {i: [float(i)] for i in range(6)}


def test_a_server_whose_first_load_failed_becomes_ready_once_the_model_is_back(ctx, cancer, tmp_path) -> None:
    X, _, model = cancer
    version = registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create("late", version.uri)
    blob = next(p for p in (tmp_path / "artifacts").rglob("*") if p.is_file() and p.name.startswith(version.artifact_sha256[:12]))
    hidden = blob.with_name("hidden")
    os.replace(blob, hidden)
    with serve_app(create_app("late", ctx=ctx, prediction_log=None)) as url:
        time.sleep(1.0)
        r = httpx.get(f"{url}/v2/health/ready")
        assert r.status_code == 503 and "not ready" in r.json()["error"]
        os.replace(hidden, blob)
        wait_ready(url, timeout=15)  # retried every 2 s: no restart needed
        assert httpx.post(f"{url}/predict", json={"records": [X.iloc[0].to_dict()]}).status_code == 200


def test_a_shadow_on_the_primarys_version_has_a_queue_of_its_own(ctx, cancer) -> None:
    X, _, model = cancer
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    registry.promote("cancer", 1, "prod", force=True, ctx=ctx)
    ctx.store.deployments.create("self", "models:/cancer@prod", shadows=["models:/cancer/1"])
    app = create_app("self", ctx=ctx, prediction_log=None)
    with serve_app(app) as url:
        wait_ready(url)
        table = app.state.serving.table
        assert table.primary.served is table.shadows[0].served  # loaded once
        assert table.primary.batcher is not table.shadows[0].batcher  # queued apart
        assert table.shadows[0].batcher.inline_rows == 0  # a native model: never on the event loop


def test_client_input_never_becomes_a_500(ctx, cancer) -> None:
    X, _, model = cancer
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create("strict", "models:/cancer/1")
    log = PredictionLog(ParquetSink("strict", ctx))
    row = X.iloc[0].to_dict()
    columns = [{"name": c, "shape": [1], "datatype": "FP64", "data": [row[c]]} for c in X.columns]
    with serve_app(create_app("strict", ctx=ctx, prediction_log=log)) as url:
        wait_ready(url)
        ignored = httpx.post(f"{url}/predict", json={"records": [row], "outputs": [{"name": "predict_proba"}]})
        assert ignored.status_code == 200 and ignored.json()["predictions"] == model.predict(X.iloc[[0]]).tolist()
        proba_only = httpx.post(f"{url}/v2/models/strict/infer", json={"inputs": columns, "outputs": [{"name": "predict_proba"}]})
        assert proba_only.status_code == 200 and [o["name"] for o in proba_only.json()["outputs"]] == ["predict_proba"]
        unhashable = httpx.post(f"{url}/v2/models/strict/infer", json={"inputs": columns, "outputs": [{"name": ["x"]}]})
        assert unhashable.status_code == 422 and unhashable.json()["violations"][0]["field"] == "outputs"
        empty = [{"name": "input", "shape": [0, 30], "datatype": "FP64", "data": []}]
        nothing = httpx.post(f"{url}/v2/models/strict/infer", json={"inputs": empty})
        assert nothing.status_code == 422 and nothing.json()["violations"][0]["expected"] == "at least one row"
        binary = httpx.post(
            f"{url}/v2/models/strict/infer", content=b"\x00\x01", headers={"Inference-Header-Content-Length": "2"}
        )
        assert binary.status_code == 422 and "binary_data=False" in binary.json()["violations"][0]["expected"]
        unknown = httpx.get(f"{url}/v2/nothing/here")
        assert unknown.status_code == 404 and "error" in unknown.json()
        errors = httpx.get(f"{url}/metrics").text
    log.close()
    assert "keel_serve_errors_total" not in errors or 'keel_serve_errors_total{deployment="strict"' not in errors


@pytest.mark.parametrize("shape", ["records", "columns", "v2"])
def test_a_sticky_key_holds_in_every_body_shape(ctx, cancer, shape) -> None:
    X, _, model = cancer
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create("sticky", "models:/cancer/1", canaries=[("models:/cancer/2", 0.5)], sticky_key="mean radius")
    with serve_app(create_app("sticky", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        routes = {}
        for i in range(12):
            row = X.iloc[i].to_dict()
            body = {
                "records": {"records": [row]},
                "columns": {"columns": {k: [v] for k, v in row.items()}},
                "v2": {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in row.items()]},
            }[shape]
            path = "/predict" if shape != "v2" else "/v2/models/sticky/infer"
            seen = {httpx.post(f"{url}{path}", json=body).headers["keel-model-version"] for _ in range(6)}
            assert len(seen) == 1, (i, seen)  # one customer (mean radius), one route
            routes[i] = seen.pop()
    assert set(routes.values()) == {"models:/cancer/1", "models:/cancer/2"}  # and keys do spread over both


def test_integers_past_2_53_reach_the_model_unchanged(ctx) -> None:
    import pandas as pd

    example = pd.DataFrame({"account": np.array([1, 2, 3], dtype=np.int64), "amount": [1.0, 2.0, 3.0]})
    registry.register(Echo(), "echo", input_example=example, ctx=ctx)
    big = 2**53 + 1
    with serve_app(create_app("models:/echo/1", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        exact = httpx.post(f"{url}/predict", json={"records": [{"account": big, "amount": 1.0}]})
        too_big = httpx.post(f"{url}/predict", json={"records": [{"account": 2**64, "amount": 1.0}]})
    assert exact.status_code == 200 and exact.json()["predictions"] == [big]
    assert too_big.status_code == 422 and too_big.json()["violations"][0]["field"] == "records[0].account"


def test_an_alias_moved_in_this_process_wakes_the_server_at_once(ctx, cancer) -> None:
    X, _, model = cancer
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    registry.promote("cancer", 1, "prod", force=True, ctx=ctx)
    ctx.store.deployments.create("woken", "models:/cancer@prod")
    body = {"records": [X.iloc[0].to_dict()]}
    with serve_app(create_app("woken", ctx=ctx, poll_interval=60, prediction_log=None)) as url:  # no poll would see it
        wait_ready(url)
        registry.promote("cancer", 2, "prod", force=True, ctx=ctx)
        deadline = time.monotonic() + 10
        while httpx.post(f"{url}/predict", json=body).headers["keel-model-version"] != "models:/cancer/2":
            assert time.monotonic() < deadline, "the alias hook did not wake the follower"
            time.sleep(0.05)
    history = ctx.store.deployments.history("woken")
    assert [c.what for c in history] == ["create", "alias"]  # recorded like any other change


def test_a_bad_index_entry_does_not_make_the_log_unreadable(ctx, cancer) -> None:
    from keel.core.predictions import PredictionLogFile
    from keel.serve import read_predictions

    X, _, model = cancer
    version = registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create("sturdy", version.uri)
    log = PredictionLog(ParquetSink("sturdy", ctx))
    row = {"row": 0, "time": 1_000, "deployment": "sturdy", "route": "primary", "model": version.uri, "served": True,
           "inputs": {"a": 1.0}, "output": 1, "proba": None, "latency_ms": 0.1, "replica": "r"}  # fmt: skip
    log.offer([{**row, "request_id": f"r{i}"} for i in range(3)])
    log.close()
    for sha in (version.artifact_sha256, "b" * 64):  # a model's blob, and a blob that is not there at all
        ctx.store.predictions.add_log_file(PredictionLogFile("sturdy", sha, rows=5, start_ms=0, end_ms=2_000, replica="x"))
    frame = read_predictions("sturdy", ctx=ctx, labels=False)
    assert sorted(frame["request_id"]) == ["r0", "r1", "r2"]


def test_a_shadow_runs_on_the_event_loop_only_while_its_calls_stay_cheap() -> None:
    from keel.serve.batching import Batcher

    batcher = Batcher(lambda data, outputs: {}, inline_rows=8, inline_budget=0.001)
    assert not batcher._inline(1)  # not measured yet: in a thread first
    batcher._remember([({}, 0.0001)])
    assert batcher._inline(1) and not batcher._inline(9)  # cheap, and small enough
    for _ in range(5):
        batcher._remember([({}, 0.05)])  # the model got slow: back to a thread
    assert not batcher._inline(1)


def test_serving_in_process_gives_the_interpreter_settings_back(ctx, cancer) -> None:
    import gc
    import sys

    X, _, model = cancer
    registry.register(model, "cancer", input_example=X.head(3), ctx=ctx)
    before = (sys.getswitchinterval(), gc.get_threshold())
    with serve_app(create_app("models:/cancer/1", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        assert (sys.getswitchinterval(), gc.get_threshold()) != before  # tuned for serving while it serves
    assert (sys.getswitchinterval(), gc.get_threshold()) == before
    assert gc.get_freeze_count() == 0
