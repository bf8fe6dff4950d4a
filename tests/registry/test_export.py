"""ONNX export with parity, edge bundles that run without keel, model cards, boosting flavors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

import keel
import keel.data
import keel.registry as registry
from keel.core.errors import InvalidArgument
from keel.registry.onnx_export import ParityFailed


@pytest.mark.parametrize("make", [
    lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    lambda: XGBClassifier(n_estimators=15, max_depth=3),
    lambda: LGBMClassifier(n_estimators=15, verbose=-1),
])  # fmt: skip
def test_flavors_round_trip_and_export_to_onnx_with_parity(make, data) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    model = make().fit(X, y)
    version = registry.register(model, "m", input_example=X.head(5))
    expected_flavor = {"Pipeline": "sklearn", "XGBClassifier": "xgboost", "LGBMClassifier": "lightgbm"}[type(model).__name__]
    assert version.flavor == expected_flavor
    np.testing.assert_array_equal(registry.load(version.uri).predict_proba(X), model.predict_proba(X))
    onnx_version = registry.export_onnx(version.uri, X)
    assert onnx_version.flavor == "onnx" and onnx_version.version == version.version + 1
    assert onnx_version.metrics["onnx_label_agreement"] == 1.0 and onnx_version.metrics["onnx_max_proba_diff"] < 1e-4
    onnx_model = registry.load(onnx_version.uri)
    np.testing.assert_array_equal(onnx_model.predict(X), model.predict(X))  # through the signature, on ONNX Runtime


def test_failed_parity_refuses_the_export(data, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    version = registry.register(model, "drifty", input_example=X.head(3))
    from keel.registry import onnx_export

    real = onnx_export.OnnxModel.predict
    monkeypatch.setattr(onnx_export.OnnxModel, "predict", lambda self, X: 1 - real(self, X))  # a broken conversion
    with pytest.raises(ParityFailed, match=r"refused: label agreement 0\.0000%"):
        registry.export_onnx(version.uri, X)
    assert [v.flavor for v in keel.get_client().store.models.list_versions("drifty")] == ["sklearn"]  # nothing added


def test_edge_bundle_runs_its_own_test_without_keel(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.assign(target=y), "bc", run=False)
    keel.data.log(X.tail(100), "bc-test", run=False)  # parity is checked on held-out rows recorded with the version
    with keel.start_run(experiment="edge") as run:
        frame = keel.data.get("bc")
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
            frame.drop(columns=["target"]), frame["target"]
        )
        run.log_metric("auc", 0.99)
        version = registry.register(model, "edge", input_example=X.head(5), holdout="bc-test")
    folder = registry.edge_bundle(version.uri, tmp_path / "bundle")
    assert {p.name for p in folder.iterdir()} == {
        "model.onnx", "signature.json", "model_card.md", "predictor.py", "test_predictor.py", "samples.json",
        ".keel-bundle.json",  # the manifest: what keel wrote, the only files a later bundle may replace
    }  # fmt: skip
    assert folder.with_suffix(".zip").is_file()
    done = subprocess.run([sys.executable, "test_predictor.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    code = (
        "from predictor import Predictor; import json; "
        "rows = json.load(open('samples.json'))['rows']; print(Predictor().predict(rows[:3]).tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == str(model.predict(X.tail(100).head(3)).tolist())  # held-out rows


def test_model_card_from_lineage(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    X, y = data
    keel.data.log(X.assign(target=y), "bc", run=False)
    with keel.start_run(experiment="cards", params={"C": 0.5}) as run:
        keel.data.get("bc")
        run.log_metric("auc", 0.98)
        registry.register(make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y), "carded")
    registry.promote("carded", 1, "production", force=True, actor="ana", reason="first release")
    md, html = registry.write_card("carded", 1, tmp_path, purpose="Find tumours", limitations="One hospital's data")
    text = md.read_text()
    for needle in ("# Model card: carded v1", "Find tumours", "bc@1: 569 rows x 31 columns", "validation no validation",
                   "- C: 0.5", "- auc: 0.98", "One hospital's data", "production: set to v1 by ana (first release)"):  # fmt: skip
        assert needle in text, needle
    assert "<h2>Training data</h2>" in html.read_text() and "<script" not in html.read_text()
    assert "model_card/carded-v1.md" in [a.path for a in keel.get_client().list_artifacts(run.id)]


def test_unconvertible_model_is_a_clear_error(data) -> None:  # type: ignore[no-untyped-def]
    X, _ = data

    class Rule:
        def predict(self, frame):  # type: ignore[no-untyped-def]
            return np.zeros(len(frame))

    version = registry.register(Rule(), "rule", input_example=X.head(2))
    with pytest.raises(InvalidArgument, match="cannot convert Rule to ONNX"):
        registry.export_onnx(version.uri, X)
