"""keel serve's Open Inference Protocol V2, checked with a third-party client: NVIDIA's ``tritonclient[http]``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import keel.registry as registry
from keel.context import Context
from keel.serve import create_app
from keel.testing.services import serve_app, wait_ready

triton = pytest.importorskip("tritonclient.http")

NUMPY_OF = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_, "BYTES": np.object_}


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    home = tmp_path_factory.mktemp("triton")
    context = Context(f"sqlite:///{home / 'keel.db'}", str(home / "artifacts"))
    yield context
    context.close()


def _client(url: str):
    return triton.InferenceServerClient(url=url.removeprefix("http://"), connection_timeout=10, network_timeout=30)


def _inputs(metadata: dict, frame: pd.DataFrame) -> list:
    """One InferInput per input the metadata lists, typed as it says, as JSON (no binary extension)."""
    inputs = []
    for spec in metadata["inputs"]:
        values = frame[spec["name"]].to_numpy().astype(NUMPY_OF[spec["datatype"]])
        tensor = triton.InferInput(spec["name"], [len(frame)], spec["datatype"])
        tensor.set_data_from_numpy(values, binary_data=False)
        inputs.append(tensor)
    return inputs


def test_a_numeric_model_through_tritonclient(ctx) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    registry.register(model, "cancer", input_example=X.head(5), ctx=ctx)
    with serve_app(create_app("models:/cancer/1", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        client = _client(url)
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("cancer")
            assert client.get_server_metadata()["name"] == "keel"
            metadata = client.get_model_metadata("cancer")
            assert [i["name"] for i in metadata["inputs"]] == list(X.columns)
            assert {i["datatype"] for i in metadata["inputs"]} == {"FP64"}
            rows = X.iloc[:9]
            outputs = [triton.InferRequestedOutput("predict", binary_data=False),
                       triton.InferRequestedOutput("predict_proba", binary_data=False)]  # fmt: skip
            result = client.infer("cancer", _inputs(metadata, rows), outputs=outputs, request_id="req-7")
            np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
            assert result.as_numpy("predict").dtype == np.int64
            np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows), rtol=1e-12)
            response = result.get_response()
            assert response["id"] == "req-7" and response["model_name"] == "cancer" and response["model_version"] == "1"
            # without outputs named, the model's prediction comes back
            plain = client.infer("cancer", _inputs(metadata, rows))
            np.testing.assert_array_equal(plain.as_numpy("predict"), model.predict(rows))
        finally:
            client.close()


def test_a_mixed_type_model_through_tritonclient(ctx) -> None:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "tenure": rng.integers(0, 60, n).astype(np.int64),
        "spend": rng.normal(50, 20, n),
    })  # fmt: skip
    y = ((frame["plan"] == "pro") | (frame["spend"] > 60)).astype(int)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder="passthrough"),
        LogisticRegression(max_iter=2000),
    ).fit(frame, y)
    registry.register(model, "churn", input_example=frame.head(20), ctx=ctx)
    with serve_app(create_app("models:/churn/1", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        client = _client(url)
        try:
            metadata = client.get_model_metadata("churn")
            types = {i["name"]: i["datatype"] for i in metadata["inputs"]}
            assert types == {"plan": "BYTES", "tenure": "INT64", "spend": "FP64"}
            rows = frame.iloc[:12]
            result = client.infer("churn", _inputs(metadata, rows))
            np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
            # a value outside the signature is the client's error: 422 with every violation, never a 500
            bad = rows.copy()
            bad["tenure"] = bad["tenure"].astype(np.float64) + 0.5
            bad_inputs = _inputs(
                {"inputs": [{"name": k, "datatype": "FP64" if k == "tenure" else v} for k, v in types.items()]}, bad
            )
            with pytest.raises(triton.InferenceServerException) as caught:
                client.infer("churn", bad_inputs)
            assert caught.value.status() == "422"
        finally:
            client.close()


def test_the_versioned_paths_of_the_protocol(ctx) -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :3]
    model = LogisticRegression(max_iter=2000).fit(X, y)
    registry.register(model, "small", input_example=X.head(5), ctx=ctx)
    with serve_app(create_app("models:/small/1", ctx=ctx, prediction_log=None)) as url:
        wait_ready(url)
        client = _client(url)
        try:
            assert client.is_model_ready("small", model_version="1")
            metadata = client.get_model_metadata("small", model_version="1")
            result = client.infer("small", _inputs(metadata, X.iloc[:5]), model_version="1")
            np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(X.iloc[:5]))
        finally:
            client.close()
