"""``keel models`` as a user runs it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from keel.testing.cli import keel_cmd

FLOW = """
import keel
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

@keel.step
def fit(C: float):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    keel.log_metric("auc", 0.9 + C / 100)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X, y)  # scaled: converges at once

@keel.pipeline
def train(C: float = 1.0):
    return fit(C)
"""


@pytest.mark.slow  # ~17 keel subprocesses, each importing scikit-learn, skops or ONNX
def test_register_promote_history_export_card(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    import json

    for c in ("0.5", "2.0"):
        assert keel_cmd(tmp_path, "pipeline", "run", "flows:train", "-p", f"C={c}").returncode == 0
    fits = json.loads(keel_cmd(tmp_path, "runs", "list", "--json", "-f", "name = 'fit'", "-o", "metrics.auc").stdout)
    for run in fits:
        done = keel_cmd(tmp_path, "models", "register", "--run", run["id"], "--name", "cancer")
        assert done.returncode == 0 and "registered models:/cancer/" in done.stdout, done.stderr
    listed = keel_cmd(tmp_path, "models", "list")
    assert "cancer" in listed.stdout and "v2" in listed.stdout
    assert (
        keel_cmd(tmp_path, "models", "promote", "cancer", "1", "production", "-r", "auc >= 0.9", "--reason", "first").returncode
        == 0
    )
    refused = keel_cmd(tmp_path, "models", "promote", "cancer", "1", "staging", "-r", "auc >= 0.95")
    assert refused.returncode == 1 and "'auc >= 0.95': auc is 0.905" in refused.stderr
    moved = keel_cmd(tmp_path, "models", "promote", "cancer", "2", "production", "-r", "auc >= baseline", "--reason", "better")
    assert moved.returncode == 0 and "v1 -> v2" in moved.stdout
    history = keel_cmd(tmp_path, "models", "history", "cancer")
    assert "first" in history.stdout and "better" in history.stdout
    shown = keel_cmd(tmp_path, "models", "show", "cancer@production")
    assert "models:/cancer/2" in shown.stdout and "auc" in shown.stdout
    exported = keel_cmd(tmp_path, "models", "export", "cancer@production", "--bundle", "edge", "--data", "nothing")
    assert exported.returncode == 2 and "dataset 'nothing' does not exist" in exported.stderr
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    X.to_csv(tmp_path / "holdout.csv", index=False)
    assert keel_cmd(tmp_path, "data", "log", "holdout.csv", "--name", "holdout").returncode == 0
    exported = keel_cmd(tmp_path, "models", "export", "cancer@production", "--bundle", "edge", "--data", "holdout")
    assert exported.returncode == 0, exported.stderr
    assert "label agreement 100.00%" in exported.stdout and (tmp_path / "edge" / "model.onnx").is_file()
    card = keel_cmd(tmp_path, "models", "card", "cancer@production", "--purpose", "screening")
    assert card.returncode == 0 and "screening" in (tmp_path / ".keel" / "cards" / "cancer-v2.md").read_text()
    bad = keel_cmd(tmp_path, "models", "promote", "cancer", "9", "production")
    assert bad.returncode == 2 and "has no version 9" in bad.stderr
    assert pd is not None
