"""Evaluation metrics with their trade-offs, and CI gates."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

import keel
from keel.core.errors import InvalidArgument
from keel.evaluation import classification_metrics, gate, parse_rule, regression_metrics, threshold_curve


def test_classification_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = np.clip(y * 0.6 + rng.normal(0.2, 0.25, 500), 0, 1)
    m = classification_metrics(y, y_score=score)
    pred = (score >= 0.5).astype(int)
    assert m["accuracy"] == skm.accuracy_score(y, pred) and m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    curve = threshold_curve(y, score)
    i = curve["threshold"].index(0.5)
    assert curve["precision"][i] == pytest.approx(m["precision"]) and curve["recall"][i] == pytest.approx(m["recall"])
    assert curve["recall"][0] == 1.0 and curve["recall"] == sorted(curve["recall"], reverse=True)


def test_regression_and_multiclass() -> None:
    r = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.5, 2.0])
    assert r["mae"] == pytest.approx(0.5) and r["rmse"] == pytest.approx(np.sqrt((0.25 + 1) / 3))
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    m = classification_metrics([0, 1, 2, 1], y_score=proba)
    assert m["accuracy"] == 0.75 and "roc_auc" in m
    with pytest.raises(InvalidArgument, match="y_pred has 2 rows but y_true has 3"):
        regression_metrics([1, 2, 3], [1, 2])


def test_log_evaluation_attaches_metrics_and_the_tradeoff_plot() -> None:
    from keel.evaluation import log_evaluation

    y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    score = np.array([0.1, 0.8, 0.6, 0.4, 0.9, 0.3, 0.45, 0.7])
    with keel.start_run(experiment="eval") as run:
        log_evaluation(run, y, y_score=score, prefix="test_")
    stored = keel.get_client().get_run(run.id)
    assert stored.metrics["test_accuracy"].value == 0.875 and "test_roc_auc" in stored.metrics
    page = keel.get_client().read_artifact(run.id, "test_evaluation.html").decode()
    assert "precision, recall and F1 by threshold" in page and "actual 1" in page


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("accuracy >= 0.9", "absolute", 0.9),
        ("auc >= baseline + 0.01", "delta", 0.01),
        ("auc >= baseline + 1%", "relative", 0.01),
        ("loss <= baseline - 0.02", "delta", -0.02),
        ("auc >= baseline * 1.05", "relative", pytest.approx(0.05)),
        ("loss <= baseline", "baseline", 0.0),
    ],
)
def test_rules_parse(text: str, kind: str, value: float) -> None:
    rule = parse_rule(text)
    assert rule.kind == kind and rule.value == value


def _run(metrics: dict[str, float]) -> str:
    with keel.start_run(experiment="gate") as run:
        run.log_metrics(metrics)
    return run.id


def test_gate_passes_and_fails_on_each_rule() -> None:
    base = _run({"auc": 0.90, "loss": 0.30})
    better = _run({"auc": 0.93, "loss": 0.25})
    worse = _run({"auc": 0.905, "loss": 0.35})
    ok = gate(better, ["auc >= 0.9", "auc >= baseline + 0.02", "loss <= baseline"], baseline=base)
    assert ok.passed and [c.threshold for c in ok.checks] == pytest.approx([0.9, 0.92, 0.30])
    bad = gate(worse, ["auc >= 0.9", "auc >= baseline + 1%", "loss <= baseline"], baseline=base)
    assert not bad.passed and [c.passed for c in bad.checks] == [True, False, False]
    assert bad.to_dict()["checks"][1]["threshold"] == pytest.approx(0.909)


def test_gate_bad_input_is_clear() -> None:
    run = _run({"auc": 0.9})
    with pytest.raises(InvalidArgument, match="has no metric 'f1'; it has: auc"):
        gate(run, ["f1 >= 0.5"])
    with pytest.raises(InvalidArgument, match="compares with a baseline; pass a baseline run"):
        gate(run, ["auc >= baseline"])
    with pytest.raises(InvalidArgument, match="gate rule must be"):
        gate(run, ["auc is great"])


def test_relative_rules_mean_better_for_negative_scores_too() -> None:
    rule = parse_rule("score >= baseline + 10%")
    assert rule.threshold(-10.0) == pytest.approx(-9.0)  # 10% better than -10 is -9, not -11
    assert rule.threshold(10.0) == pytest.approx(11.0)
