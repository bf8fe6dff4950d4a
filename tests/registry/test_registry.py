"""The model registry: flavors, signatures, verified loading, aliases with history, promotion gates, events."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel
import keel.data
import keel.registry as registry
from keel.core.errors import IntegrityError, InvalidArgument, NotFound
from keel.core.hooks import subscribe


class Thresholder:
    """A plain Python model: the generic flavor."""

    def __init__(self, column: str, cut: float) -> None:
        self.column, self.cut = column, cut

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame[self.column].to_numpy() > self.cut).astype(int)


def test_sklearn_round_trip_is_identical_in_every_input_format(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    version = registry.register(model, "cancer", input_example=X.head(5))
    assert (version.flavor, version.signature["format"], version.version) == ("sklearn", "skops", 1)
    assert any(r.startswith("scikit-learn==") for r in version.requirements)
    loaded = registry.load("models:/cancer/1")
    expected = model.predict_proba(X)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)  # the round trip is exact
    for batch in (pl.from_pandas(X), pa.Table.from_pandas(X, preserve_index=False), X.to_dict("records")):
        # other formats arrive in another memory layout: equal up to float summation order
        np.testing.assert_allclose(loaded.predict_proba(batch), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(registry.load("models:/cancer").predict(X.to_numpy()), model.predict(X))


def test_forest_and_generic_python_flavors(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    v = registry.register(forest, "forest", input_example=X.head(3))
    np.testing.assert_array_equal(registry.load(v.uri).predict(X), forest.predict(X))
    plain = Thresholder("mean radius", 15.0)
    g = registry.register(plain, "rule", input_example=X.head(3))
    assert g.flavor == "python" and g.signature["format"] == "pickle"
    np.testing.assert_array_equal(registry.load(g.uri).predict(X), plain.predict(X))
    with pytest.raises(InvalidArgument, match="has no predict_proba"):
        registry.load(g.uri).predict_proba(X)


def test_metrics_and_training_data_come_from_the_run(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.assign(target=y), "cancer-data", run=False)
    with keel.start_run(experiment="registry") as run:
        frame = keel.data.get("cancer-data")
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame.drop(columns=["target"]), frame["target"])
        run.log_metric("auc", 0.97)
        version = registry.register(model, "cancer", input_example=X.head(2))
    assert version.source_run == run.id and version.metrics == {"auc": 0.97} and version.datasets == ("cancer-data@1",)


def test_signature_violations_are_listed_in_one_error(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    loaded = registry.load(registry.register(model, "strict", input_example=X.head(5)).uri)
    bad = X.drop(columns=["mean radius"]).head(3).assign(**{"mean area": "big"})
    with pytest.raises(InvalidArgument) as caught:
        loaded.predict(bad)
    message = caught.value.message
    assert "missing column 'mean radius' (float)" in message and "column 'mean area' is string, expected float" in message
    cats = pd.DataFrame({"x": [1.0, 2.0], "city": pd.Categorical(["NY", "SF"])})
    from keel.registry import infer_signature, validate_input

    signature = infer_signature(cats)
    with pytest.raises(InvalidArgument, match="categories outside the signature: Paris"):
        validate_input(pd.DataFrame({"x": [1.0], "city": ["Paris"]}), signature)


def test_tampered_model_is_refused_and_never_unpickled(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    plain = Thresholder("mean radius", 15.0)
    version = registry.register(plain, "victim")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.write_text, (marker, "code ran"))

    blob = next((tmp_path / ".keel" / "artifacts").rglob(version.artifact_sha256))
    genuine = blob.read_bytes()
    blob.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(IntegrityError, match="tampered"):
        registry.load(version.uri)
    assert not marker.exists()  # the forged bytes were never deserialised
    assert not blob.exists()  # moved aside (kept under corrupt/), so a put of the genuine bytes repairs it
    blob.write_bytes(genuine[:10])  # truncated
    with pytest.raises(IntegrityError):
        registry.load(version.uri)


def test_aliases_history_and_what_was_production_then(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    for c in (0.1, 1.0):
        with keel.start_run(experiment="registry") as run:
            run.log_metric("auc", 0.9 + c / 100)
            registry.register(make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(X, y), "churn")
    first = registry.promote("churn", 1, "production", force=True, actor="ana", reason="first release")
    second = registry.promote("churn", 2, "production", rules=["auc >= baseline"], actor="bo", reason="better auc")
    assert registry.load("models:/churn@production").version.version == 2
    history = registry.history("churn", "production")
    assert [(h.from_version, h.to_version, h.actor, h.reason) for h in history] == [
        (None, 1, "ana", "first release"), (1, 2, "bo", "better auc"),
    ]  # fmt: skip
    assert registry.alias_at("churn", "production", first.at) == 1
    assert registry.alias_at("churn", "production", second.at) == 2
    assert registry.alias_at("churn", "production", first.at - 1) is None


def test_promotion_gates_refuse_with_the_failing_rule(data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.assign(target=y), "gated-data", run=False)
    aucs = (0.95, 0.93)
    for auc in aucs:
        with keel.start_run(experiment="registry") as run:
            keel.data.get("gated-data")
            run.log_metric("auc", auc)
            registry.register(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), "gated")
    registry.promote("gated", 1, "production", rules=["auc >= 0.9"])
    with pytest.raises(registry.PromotionRefused, match=r"'auc >= baseline': auc is 0.93, threshold 0.95"):
        registry.promote("gated", 2, "production", rules=["auc >= 0.9", "auc >= baseline"])
    assert registry.load("models:/gated@production").version.version == 1  # nothing moved
    with pytest.raises(registry.PromotionRefused, match="training data gated-data@1 has no validation"):
        registry.promote("gated", 2, "staging", require_valid_data=True)
    result = keel.data.validate(keel.data.get("gated-data", run=False), keel.data.infer_suite(X.assign(target=y)))
    keel.data.save_validation("gated-data@1", result)
    registry.promote("gated", 2, "staging", require_valid_data=True)
    assert registry.load("models:/gated@staging").version.version == 2


def test_events_on_new_versions_and_alias_moves() -> None:
    seen: list[tuple[str, dict]] = []

    def recorder(event: str) -> Callable[[dict], None]:
        return lambda payload: seen.append((event, payload))

    stop = [subscribe(e, recorder(e)) for e in ("model.version_created", "model.alias_moved")]
    try:
        registry.register(Thresholder("x", 0.0), "evented")
        registry.promote("evented", 1, "production", force=True)
    finally:
        for s in stop:
            s()
    assert seen == [
        ("model.version_created", {"model": "evented", "version": 1, "uri": "models:/evented/1"}),
        ("model.alias_moved", {"model": "evented", "alias": "production", "from": None, "to": 1}),
    ]


def test_bad_input_is_clear() -> None:
    with pytest.raises(InvalidArgument, match="model must be an object with a predict method"):
        registry.register(object(), "nothing")
    registry.register(Thresholder("x", 0.0), "m")
    with pytest.raises(NotFound, match="has no version 9"):
        registry.promote("m", 9, "production")
    with pytest.raises(InvalidArgument, match="alias must be 1-64 lowercase"):
        registry.promote("m", 1, "Prod!")
    with pytest.raises(InvalidArgument, match="model URI must be"):
        registry.load("s3://bucket/model.pkl")
    with pytest.raises(InvalidArgument, match="cannot predict its input_example"):
        registry.register(Thresholder("missing", 0.0), "m", input_example=pd.DataFrame({"x": [1.0]}))


def test_skops_trust_list_refuses_code_execution_builtins() -> None:
    from keel.registry.flavors import is_estimator_class

    for dangerous in (
        "builtins.exec",
        "builtins.eval",
        "builtins.getattr",
        "builtins.open",
        "builtins.__import__",
        "numpyx.evil",
    ):
        assert not is_estimator_class(dangerous)


def test_nullable_pandas_dtypes_keep_their_kind() -> None:
    from keel.registry import infer_signature, validate_input

    frame = pd.DataFrame({"a": pd.array([1.0, None], dtype="Float64"), "n": pd.array([1, 2], dtype="Int64")})
    signature = infer_signature(frame)
    kinds = {c["name"]: c["kind"] for c in signature["inputs"]["columns"]}
    assert kinds == {"a": "float", "n": "integer"}
    validate_input(frame, signature)  # no "is string, expected float"
