"""A serving replica on any store (SQLite, PostgreSQL, a keel server over REST): it reads the deployment, follows
a change of its routes, and its prediction log (blobs and index) lands in that store and reads back."""

from __future__ import annotations

import time
import uuid

import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import keel.registry as registry
from keel.context import Context
from keel.serve import create_app, read_predictions
from keel.testing.services import serve_app


def test_a_replica_follows_its_deployment_and_logs_into_any_store(store_uri: str, tmp_path) -> None:
    ctx = Context(store_uri, str(tmp_path / "artifacts"))  # an http store uses the server's artifacts instead
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    name = f"m{uuid.uuid4().hex[:8]}"  # the REST server is shared by the whole session
    v1 = registry.register(LogisticRegression(max_iter=5000).fit(X, y), name, input_example=X.head(3), ctx=ctx)
    v2 = registry.register(LogisticRegression(C=0.01, max_iter=5000).fit(X, y), name, input_example=X.head(3), ctx=ctx)
    ctx.store.deployments.create(name, v1.uri)
    body = {"records": [X.iloc[0].to_dict()]}
    answered: list[str] = []
    app = create_app(name, ctx=ctx, poll_interval=0.2)  # the configured sink: Parquet in this store
    with serve_app(app) as url:
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, app.state.serving.error
            time.sleep(0.05)
        for _ in range(5):
            answered.append(httpx.post(f"{url}/predict", json=body).headers["keel-model-version"])
        ctx.store.deployments.set_routes(name, primary=v2.uri, reason="test")
        deadline = time.monotonic() + 15
        while answered[-1] != v2.uri:
            assert time.monotonic() < deadline, "the replica did not follow the change"
            answered.append(httpx.post(f"{url}/predict", json=body).headers["keel-model-version"])
            time.sleep(0.05)
    assert answered[:5] == [v1.uri] * 5
    logged = read_predictions(name, ctx=ctx, labels=False)
    assert len(logged) == len(answered) and logged["model"].tolist() == answered
    assert logged["inputs"].iloc[0] == X.iloc[0].to_dict()
    ctx.close()
