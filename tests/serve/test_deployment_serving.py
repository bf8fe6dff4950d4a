"""Serving a deployment on real uvicorn: shadows off the response path and logged in pairs, sticky canaries,
changes followed and swapped whole under load, alias moves picked up, overload answered 503, a raising model 500."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel.registry as registry
from keel.context import Context
from keel.serve import create_app
from keel.serve.parquet_sink import ParquetSink
from keel.serve.predictions import read_predictions
from keel.serve.predlog import PredictionLog
from keel.testing.services import serve_app, wait_ready


class SlowModel:
    """Sleeps on every call (the GIL is released while it does): a model that cannot keep up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, X):
        time.sleep(self.seconds)
        return np.zeros(len(X), dtype=np.int64)


class Fussy:
    """Raises on a row whose first value is negative: a model that fails on some inputs only."""

    def predict(self, X):
        values = np.asarray(X, dtype=float)
        if (values[:, 0] < 0).any():
            raise ValueError("negative input")
        return np.ones(len(values), dtype=np.int64)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    home = tmp_path_factory.mktemp("deploy-serve")
    ctx = Context(f"sqlite:///{home / 'keel.db'}", str(home / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    strong = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    flipped = np.where(np.random.default_rng(0).random(len(y)) < 0.3, 1 - y, y)  # trained on noisy labels: disagrees
    weak = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)).fit(X, flipped)
    registry.register(strong, "cancer", input_example=X.head(5), ctx=ctx)  # v1
    registry.register(weak, "cancer", input_example=X.head(5), ctx=ctx)  # v2
    registry.register(strong, "cancer", input_example=X.head(5), ctx=ctx)  # v3: same as v1, another version
    yield ctx, X, y, strong, weak
    ctx.close()


def _wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_shadow_answers_off_the_response_path_and_both_outputs_are_logged_under_one_request_id(models) -> None:
    ctx, X, _, strong, weak = models
    ctx.store.deployments.create("shadowed", "models:/cancer/1", shadows=["models:/cancer/2"])
    log = PredictionLog(ParquetSink("shadowed", ctx))
    with serve_app(create_app("shadowed", ctx=ctx, prediction_log=log)) as url:
        wait_ready(url)
        ids = []
        for i in range(40):
            r = httpx.post(f"{url}/predict", json={"records": [X.iloc[i].to_dict()]})
            assert r.status_code == 200 and r.headers["keel-route"] == "primary"
            assert r.json()["predictions"] == strong.predict(X.iloc[[i]]).tolist()  # the primary answered
            assert r.headers["keel-model-version"] == "models:/cancer/1"
            ids.append(r.json()["request_id"])
        _wait_for(lambda: log.written + log.queued >= 80)
        log.flush()
        metrics = httpx.get(f"{url}/metrics").text
    frame = read_predictions("shadowed", ctx=ctx, labels=False)
    assert len(frame) == 80 and set(frame["request_id"]) == set(ids)
    pairs = frame.pivot_table(index="request_id", columns="model", values="output", aggfunc="first")
    assert list(pairs.columns) == ["models:/cancer/1", "models:/cancer/2"]
    served = frame[frame["served"]]
    assert set(served["model"]) == {"models:/cancer/1"} and set(served["route"]) == {"primary"}
    shadow = frame[~frame["served"]].set_index("request_id")
    expected_shadow = dict(zip(ids, weak.predict(X.iloc[:40]).tolist(), strict=True))
    assert {rid: shadow.loc[rid, "output"] for rid in ids} == expected_shadow
    assert all(len(p) == 2 for p in frame["proba"])  # probabilities logged for both
    for i, rid in enumerate(ids[:5]):  # the inputs come back as the row each model read
        assert all(logged == X.iloc[i].to_dict() for logged in frame.loc[frame["request_id"] == rid, "inputs"])
    import io

    import pyarrow.parquet as pq

    (first, *_) = ctx.store.predictions.log_files("shadowed")
    stored = pq.read_table(io.BytesIO(ctx.artifacts.get_bytes(first.sha256)))
    # numeric inputs are stored as typed columns (cheap to write, read one feature at a time), not JSON text
    assert stored.schema.field("inputs.mean radius").type == "double" and stored["inputs"].null_count == stored.num_rows
    disagreements = sum(strong.predict(X.iloc[:40]) != weak.predict(X.iloc[:40]))
    assert (
        f'keel_serve_shadow_disagreements_total{{deployment="shadowed",model="models:/cancer/2"}} {float(disagreements)}'
        in metrics
    )


def test_canary_takes_its_weight_and_a_sticky_key_always_lands_on_the_same_route(models) -> None:
    ctx, X, _, _, _ = models
    ctx.store.deployments.create("canaried", "models:/cancer/1", canaries=[("models:/cancer/3", 0.3)], sticky_key="customer")
    with serve_app(create_app("canaried", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        row = X.iloc[0].to_dict()
        first: dict[str, str] = {}
        counts: Counter[str] = Counter()
        with httpx.Client() as client:
            for customer in range(300):
                for _ in range(2):
                    r = client.post(f"{url}/predict", json={"records": [row], "customer": f"c{customer}"})
                    assert r.status_code == 200
                    model = r.headers["keel-model-version"]
                    assert first.setdefault(f"c{customer}", model) == model  # sticky
                counts[first[f"c{customer}"]] += 1
            by_header = {
                client.post(f"{url}/predict", json={"records": [row]}, headers={"x-keel-route-key": "k1"}).headers[
                    "keel-model-version"
                ]
                for _ in range(10)
            }
    assert len(by_header) == 1
    share = counts["models:/cancer/3"] / 300
    assert 0.2 < share < 0.4, counts  # 0.3 +- 4 standard deviations of a binomial(300, 0.3) share


def test_changes_are_followed_and_swapped_whole_under_load_without_a_failed_request(models) -> None:
    ctx, X, _, _, _ = models
    deployments = ctx.store.deployments
    deployments.create("swapping", "models:/cancer/1")
    body = {"records": [X.iloc[3].to_dict()]}
    seen: Counter[tuple[int, str]] = Counter()
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                r = client.post(f"{url}/predict", json=body)
                seen[(r.status_code, r.headers.get("keel-model-version", ""))] += 1

    with serve_app(create_app("swapping", ctx=ctx, poll_interval=0.1, prediction_log=None)) as url:
        wait_ready(url)
        workers = [threading.Thread(target=load, args=(url,)) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            steps = [
                lambda: deployments.set_routes("swapping", primary="models:/cancer/3"),
                lambda: deployments.set_routes("swapping", shadows=["models:/cancer/2"]),
                lambda: deployments.set_routes("swapping", canaries=[("models:/cancer/1", 0.5)]),
                lambda: deployments.rollback("swapping"),
            ]
            for step in steps:
                step()
                time.sleep(0.8)
            _wait_for(lambda: httpx.get(f"{url}/metrics").status_code == 200)
            final = {httpx.post(f"{url}/predict", json=body).headers["keel-model-version"] for _ in range(30)}
        finally:
            stop.set()
            for w in workers:
                w.join()
    assert sum(seen.values()) > 200
    assert {status for status, _ in seen} == {200}, seen
    assert {model for _, model in seen} <= {"models:/cancer/1", "models:/cancer/3"}
    assert seen[(200, "models:/cancer/3")] > 0 and seen[(200, "models:/cancer/1")] > 0
    assert final == {"models:/cancer/1"}  # rolled back to v1, whose 0.5 canary route went with it


def test_a_deployment_on_an_alias_follows_the_alias(models) -> None:
    ctx, X, _, _, _ = models
    registry.promote("cancer", 1, "prod", force=True, ctx=ctx)
    ctx.store.deployments.create("aliased", "models:/cancer@prod")
    body = {"records": [X.iloc[0].to_dict()]}
    with serve_app(create_app("aliased", ctx=ctx, poll_interval=0.2, prediction_log=None)) as url:
        wait_ready(url)
        assert httpx.post(f"{url}/predict", json=body).headers["keel-model-version"] == "models:/cancer/1"
        registry.promote("cancer", 3, "prod", force=True, ctx=ctx)
        _wait_for(lambda: httpx.post(f"{url}/predict", json=body).headers["keel-model-version"] == "models:/cancer/3", 10)


def test_overload_answers_503_with_retry_after_and_the_queue_stays_bounded(tmp_path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    example = np.zeros((3, 2))
    registry.register(SlowModel(0.2), "slow", input_example=example, ctx=ctx)
    results: list[httpx.Response] = []
    with serve_app(create_app("models:/slow/1", ctx=ctx, max_batch_rows=1, max_queue_rows=2, prediction_log=None)) as url:
        wait_ready(url)

        def call() -> None:
            results.append(httpx.post(f"{url}/predict", json={"instances": [[1.0, 2.0]]}, timeout=30))

        threads = [threading.Thread(target=call) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = Counter(r.status_code for r in results)
    assert statuses[503] >= 6 and statuses[200] >= 2 and set(statuses) == {200, 503}, statuses
    refused = next(r for r in results if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and "overloaded" in refused.json()["error"]
    ctx.close()


def test_a_model_that_raises_fails_only_its_own_request_with_500_and_the_request_id(tmp_path) -> None:
    ctx = Context(f"sqlite:///{tmp_path / 'keel.db'}", str(tmp_path / "artifacts"))
    registry.register(Fussy(), "fussy", input_example=np.ones((3, 2)), ctx=ctx)
    with serve_app(create_app("models:/fussy/1", ctx=ctx, max_wait=0.05, prediction_log=None)) as url:
        wait_ready(url)
        results: dict[str, httpx.Response] = {}

        def call(name: str, value: float) -> None:
            results[name] = httpx.post(f"{url}/predict", json={"instances": [[value, 1.0]]}, headers={"x-request-id": name})

        threads = [threading.Thread(target=call, args=(f"r{i}", -1.0 if i == 3 else 1.0)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = httpx.get(f"{url}/metrics").text
    assert results["r3"].status_code == 500
    failed = results["r3"].json()
    assert len(failed["request_id"]) == 32 and failed["request_id"] == results["r3"].headers["x-request-id"]
    assert "ValueError" in failed["error"]
    assert all(results[f"r{i}"].status_code == 200 for i in range(8) if i != 3)
    assert 'keel_serve_errors_total{deployment="models:/fussy/1",model="models:/fussy/1",route="primary"} 1.0' in errors
    from prometheus_client.parser import text_string_to_metric_families

    (batches,) = [f for f in text_string_to_metric_families(errors) if f.name == "keel_serve_batch_size"]
    value = {s.name: s.value for s in batches.samples}
    assert value["keel_serve_batch_size_sum"] > value["keel_serve_batch_size_count"]  # requests did share model calls
    ctx.close()
