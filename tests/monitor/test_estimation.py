"""CBPE: the metrics estimated from calibrated probabilities come close to the realised ones on a shifted test
set, before any label is used."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from keel.core.errors import InvalidArgument
from keel.monitor import Estimator, expected_metrics, realised_metrics


def test_estimated_metrics_track_the_realised_ones_under_covariate_shift() -> None:
    X, y = make_classification(n_samples=60_000, n_features=8, n_informative=5, random_state=0)
    train, reference, rest = slice(0, 20_000), slice(20_000, 30_000), slice(30_000, None)
    model = LogisticRegression(max_iter=1000).fit(X[train], y[train])
    estimator = Estimator().fit(model.predict_proba(X[reference])[:, 1], y[reference])
    # covariate shift: the live rows are the ones the model is least sure about (P(y|x) unchanged)
    proba_rest = model.predict_proba(X[rest])[:, 1]
    shifted = np.abs(proba_rest - 0.5) < 0.3
    Xs, ys = X[rest][shifted], y[rest][shifted]
    proba, predicted = model.predict_proba(Xs)[:, 1], model.predict(Xs)
    estimated = estimator.estimate(proba, predicted)
    realised = realised_metrics(ys, predicted, proba)
    baseline = realised_metrics(y[reference], model.predict(X[reference]), model.predict_proba(X[reference])[:, 1])
    shifted_accuracy, baseline_accuracy = realised["accuracy"], baseline["accuracy"]
    assert shifted_accuracy is not None and baseline_accuracy is not None
    assert shifted_accuracy < baseline_accuracy - 0.1  # the shift really costs accuracy
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert estimated[name] == pytest.approx(realised[name], abs=0.03), name


def test_expected_metrics_of_certain_probabilities_are_the_realised_ones() -> None:
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    predicted = np.array([1, 0, 0, 1, 1, 0, 1, 0])
    estimated = expected_metrics(labels.astype(float), predicted)  # probability 1 for positives, 0 for negatives
    realised = realised_metrics(labels, predicted, labels.astype(float))
    assert estimated == pytest.approx(realised)


def test_bad_probabilities_and_too_few_labels_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"proba.*\[0, 1\]"):
        expected_metrics([0.2, 1.5], [0, 1])
    with pytest.raises(InvalidArgument, match="predicted"):
        expected_metrics([0.2, 0.5], [0])
    with pytest.raises(InvalidArgument, match="at least 20"):
        Estimator().fit([0.1, 0.9], [0, 1])
