"""Issue 13, helper 5: the registry's defaults and messages an MLflow user trips on.

ONNX parity on held-out rows (never the training data by default), a model registered from a pipeline's step
taking that pipeline's metrics and training data, one-line messages for the usual mistakes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel
import keel.data
import keel.registry as registry
from keel.core.errors import InvalidArgument, NotFound
from keel.registry.onnx_export import ParityFailed


def _model(X: Any, y: Any) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)


def test_parity_is_checked_on_the_held_out_rows_recorded_with_the_version(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    train, test = X.iloc[:400], X.iloc[400:]
    keel.data.log(train.assign(target=y.iloc[:400]), "cancer-train", run=False)
    keel.data.log(test.assign(target=y.iloc[400:]), "cancer-test", run=False)
    with keel.start_run(experiment="h5"):
        frame = keel.data.get("cancer-train")
        model = _model(frame.drop(columns=["target"]), frame["target"])
        version = registry.register(model, "held", input_example=X.head(3), holdout="cancer-test")
    assert version.signature["holdout"] == "cancer-test@1"  # recorded exactly: a later version does not move it
    assert list(version.datasets) == ["cancer-train@1"]
    onnx = registry.export_onnx(version.uri)
    assert onnx.metrics["onnx_parity_rows"] == len(test) == 169  # the held-out rows, not the 400 it was fitted on
    assert onnx.signature["parity_rows"] == "cancer-test@1"


def test_export_without_held_out_rows_refuses_and_says_how_to_give_them(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.assign(target=y), "cancer-all", run=False)
    with keel.start_run(experiment="h5"):
        frame = keel.data.get("cancer-all")
        version = registry.register(_model(frame.drop(columns=["target"]), frame["target"]), "nohold", input_example=X.head(3))
    with pytest.raises(ParityFailed) as caught:
        registry.export_onnx(version.uri)  # the training data is no longer a silent default
    assert "records no held-out rows" in caught.value.message and "data=" in caught.value.message
    assert "holdout=" in caught.value.message and "\n" not in caught.value.message
    assert [v.flavor for v in keel.get_client().store.models.list_versions("nohold")] == ["sklearn"]
    assert registry.export_onnx(version.uri, X.tail(50)).metrics["onnx_parity_rows"] == 50  # given rows still work


def test_a_holdout_that_does_not_exist_is_refused_before_anything_is_stored(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    with pytest.raises(NotFound, match="no-such-rows"):
        registry.register(_model(X, y), "ghost", holdout="no-such-rows")
    with pytest.raises(InvalidArgument, match="holdout must be a dataset reference"):
        registry.register(_model(X, y), "ghost", holdout=3)  # type: ignore[arg-type]
    try:
        versions = keel.get_client().store.models.list_versions("ghost")
    except NotFound:
        versions = []
    assert versions == []  # nothing registered


def test_export_onnx_of_an_onnx_version_is_one_line(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    version = registry.register(_model(X, y), "twice", input_example=X.head(3))
    onnx = registry.export_onnx(version.uri, X.head(100))
    with pytest.raises(InvalidArgument) as caught:
        registry.export_onnx(onnx.uri, X.head(100))
    assert caught.value.message == (
        "model must be a version that is not ONNX already (exported from version 1); got 'models:/twice/2'"
    )


def test_alias_at_takes_iso_strings_dates_and_datetimes(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    version = registry.register(_model(X, y), "when", input_example=X.head(3))
    registry.promote("when", version.version, "production", force=True, reason="first")
    assert registry.alias_at("when", "production", "2000-01-01") is None
    assert registry.alias_at("when", "production", "2999-01-01") == 1
    assert registry.alias_at("when", "production", dt.date(2999, 1, 1)) == 1
    assert registry.alias_at("when", "production", dt.datetime(2999, 1, 1, tzinfo=dt.UTC)) == 1
    assert registry.alias_at("when", "production", "2999-01-01T12:00+02:00") == 1
    with pytest.raises(InvalidArgument) as caught:
        registry.alias_at("when", "production", "yesterday")
    assert caught.value.message.startswith("at must be ms since the epoch, a date/datetime or an ISO date string")
    assert caught.value.message.endswith("got 'yesterday'")
    with pytest.raises(InvalidArgument, match="at must be"):
        registry.alias_at("when", "production", 1.5)  # type: ignore[arg-type]


def test_predict_on_an_array_of_the_wrong_width_names_the_columns(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    version = registry.register(_model(X, y), "wide", input_example=X.head(3))
    loaded = registry.load(version.uri)
    with pytest.raises(InvalidArgument) as caught:
        loaded.predict(np.zeros((2, 5)))
    message = caught.value.message
    assert message.startswith("input does not match the model signature: expected rows of 30 columns named mean radius")
    assert message.endswith("got 5 columns") and "Shape of passed values" not in message
    with pytest.raises(InvalidArgument, match="got an array of shape \\[30\\]"):
        loaded.predict(np.zeros(30))
    assert loaded.predict(X.head(2).to_numpy()).tolist() == loaded.model.predict(X.head(2)).tolist()  # right width works


@keel.step
def h5_load(ref: str) -> Any:
    return keel.data.get(ref)


@keel.step
def h5_fit(frame: Any) -> Any:
    return _model(frame.drop(columns=["target"]), frame["target"])


@keel.step
def h5_evaluate(model: Any, frame: Any) -> float:
    score = float(model.score(frame.drop(columns=["target"]), frame["target"]))
    keel.log_metric("accuracy", score)
    return score


@keel.pipeline
def h5_train(ref: str = "cancer-piped") -> Any:
    frame = h5_load(ref)
    return h5_evaluate(h5_fit(frame), frame)


def test_a_model_registered_from_a_pipeline_step_takes_the_pipelines_metrics_and_data(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.assign(target=y), "cancer-piped", run=False)
    result = h5_train.run(experiment="h5")
    fit_run = result.step("h5_fit").run_id
    version = registry.register(result.output_of("h5_fit"), "piped", run=fit_run)
    assert version.source_run == result.run_id  # the pipeline run: its params and its steps' metrics
    assert version.metrics["accuracy"] == pytest.approx(result.output)
    assert list(version.datasets) == ["cancer-piped@1"]  # what its load step read
    # with that data validated by a suite, require_valid_data passes: the README's registry flow
    keel.data.log(X.assign(target=y), "cancer-valid", suite=keel.data.infer_suite(X.assign(target=y), "cancer-valid"), run=False)
    valid = h5_train.run(experiment="h5", ref="cancer-valid")
    checked = registry.register(valid.output_of("h5_fit"), "piped", run=valid.step("h5_fit").run_id)
    change = registry.promote("piped", checked.version, "production", rules=["accuracy >= 0.9"], require_valid_data=True)
    assert change.to_version == checked.version
    with pytest.raises(registry.PromotionRefused):
        registry.promote("piped", version.version, "staging", require_valid_data=True)  # logged without a suite
