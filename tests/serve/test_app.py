"""keel.serve on real uvicorn: V2 health, metadata and infer, /predict, one 422 listing every violation."""

from __future__ import annotations

import time

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
from keel.testing.services import serve_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One model fitted and registered per module, served by real uvicorn; yields (url, model, X, ctx)."""
    home = tmp_path_factory.mktemp("serve")
    ctx = Context(f"sqlite:///{home / 'keel.db'}", str(home / "artifacts"))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    registry.register(model, "cancer", input_example=X.head(5), ctx=ctx)
    with serve_app(create_app("models:/cancer", ctx=ctx)) as url:
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the model never became ready"
            time.sleep(0.05)
        yield url, model, X, ctx
    ctx.close()


def test_health_and_metadata_list_the_30_inputs_as_fp64(served) -> None:
    url, _, X, _ = served
    live = httpx.get(f"{url}/v2/health/live")
    assert live.status_code == 200 and live.headers["keel-model-version"] == "models:/cancer/1"
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2").json()["name"] == "keel"
    meta = httpx.get(f"{url}/v2/models/cancer").json()
    assert meta["name"] == "cancer" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == list(X.columns) and len(meta["inputs"]) == 30
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert httpx.get(f"{url}/v2/models/other").status_code == 404


def test_v2_infer_and_predict_agree_with_the_model_in_process(served) -> None:
    url, model, X, _ = served
    rows = X.iloc[:7]
    expected = model.predict(rows).tolist()
    per_column = {
        "id": "req-1",
        "inputs": [{"name": c, "shape": [7], "datatype": "FP64", "data": rows[c].tolist()} for c in X.columns],
    }
    r = httpx.post(f"{url}/v2/models/cancer/infer", json=per_column)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1" and body["model_name"] == "cancer" and body["model_version"] == "1"
    (out,) = body["outputs"]
    assert out["name"] == "predict" and out["datatype"] == "INT64" and out["shape"] == [7] and out["data"] == expected
    assert r.headers["keel-model-version"] == "models:/cancer/1"
    matrix = {"inputs": [{"name": "input", "shape": [7, 30], "datatype": "FP64", "data": rows.to_numpy().tolist()}],
              "outputs": [{"name": "predict_proba"}]}  # fmt: skip
    proba = httpx.post(f"{url}/v2/models/cancer/infer", json=matrix).json()["outputs"][0]
    assert proba["datatype"] == "FP64" and proba["shape"] == [7, 2]
    np.testing.assert_allclose(np.reshape(proba["data"], (7, 2)), model.predict_proba(rows), rtol=1e-12)
    for payload in ({"records": rows.to_dict("records")}, {"columns": rows.to_dict("list")}):
        p = httpx.post(f"{url}/predict", json=payload, headers={"x-request-id": "abc-123"})  # the client's id is not used
        assert p.status_code == 200, p.text
        request_id = p.json()["request_id"]
        assert p.json() == {"predictions": expected, "model": "models:/cancer/1", "request_id": request_id}
        assert len(request_id) == 32 and request_id != "abc-123" and p.headers["x-request-id"] == request_id
        assert p.headers["keel-model-version"] == "models:/cancer/1"


def test_bad_input_answers_one_422_listing_every_violation(served) -> None:
    url, _, X, _ = served
    record = X.iloc[0].to_dict()
    del record["mean radius"]
    record["mean texture"] = "rough"
    second = X.iloc[1].to_dict()
    second["worst area"] = None
    r = httpx.post(f"{url}/predict", json={"records": [record, second]})
    assert r.status_code == 422
    body = r.json()
    assert body["model"] == "models:/cancer/1" and body["request_id"]
    assert r.headers["keel-model-version"] == "models:/cancer/1"
    listed = {(v["field"], v["value"]) for v in body["violations"]}
    assert listed == {("records[0].mean radius", None), ("records[0].mean texture", "'rough'"), ("records[1].worst area", None)}
    assert all(v["expected"] for v in body["violations"])
    # a 2-D tensor one column short, and per-column tensors with a string and a missing column
    short = {"inputs": [{"name": "input", "shape": [1, 29], "datatype": "FP64", "data": X.iloc[0].tolist()[:29]}]}
    r = httpx.post(f"{url}/v2/models/cancer/infer", json=short)
    assert r.status_code == 422 and [v["field"] for v in r.json()["violations"]] == ["inputs[0].shape"]
    cols = [{"name": c, "shape": [1], "datatype": "FP64", "data": [float(X.iloc[0][c])]} for c in X.columns[1:]]
    cols[0]["data"] = ["x"]
    r = httpx.post(f"{url}/v2/models/cancer/infer", json={"inputs": cols})
    assert r.status_code == 422
    assert {v["field"] for v in r.json()["violations"]} == {"mean radius", f"{X.columns[1]}[0]"}
    uneven = httpx.post(f"{url}/predict", json={"columns": {"mean radius": [1.0, 2.0], "mean texture": [1.0]}})
    assert uneven.status_code == 422 and uneven.json()["violations"][0]["field"] == "columns"
    assert httpx.post(f"{url}/predict", content=b"{not json").status_code == 422
