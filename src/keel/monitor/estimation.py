"""Performance before the labels arrive: confidence-based performance estimation (CBPE, as NannyML has it).

For a binary classifier whose probabilities are calibrated, row ``i`` predicted positive is a true positive with
probability ``p_i`` and a false positive with ``1 - p_i``; summing these expectations over a window gives the
expected confusion matrix, hence accuracy, precision, recall and F1, and the expected ROC curve gives the ROC
AUC. Probabilities are calibrated first on a reference set whose labels are known (isotonic regression, fitted
once), as NannyML does. The estimate is right while the relation between inputs and label holds (covariate
shift); when that relation itself changes (concept drift), only the real labels tell, which is why it is shown
until they arrive and then replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument

__all__ = ["ESTIMATED_METRICS", "Estimator", "expected_metrics", "realised_metrics"]

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _probabilities(values: Any, field: str) -> np.ndarray:
    p = np.asarray(values, dtype=np.float64).ravel()
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise InvalidArgument.for_field(field, "values outside [0, 1]", "probabilities of the positive class in [0, 1]")
    return p


def expected_metrics(proba: Any, predicted: Any) -> dict[str, float | None]:
    """The expected metrics of binary predictions (1 = positive) given calibrated positive-class probabilities."""
    p = _probabilities(proba, "proba")
    yhat = np.asarray(predicted).ravel().astype(bool)
    if p.size != yhat.size:
        raise InvalidArgument.for_field("predicted", f"{yhat.size} values", f"one per probability ({p.size})")
    if not p.size:
        return dict.fromkeys(ESTIMATED_METRICS)
    tp, fp = float(p[yhat].sum()), float((1 - p[yhat]).sum())
    fn, tn = float(p[~yhat].sum()), float((1 - p[~yhat]).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"accuracy": (tp + tn) / p.size, "precision": precision, "recall": recall, "f1": f1, "roc_auc": _expected_auc(p)}


def _expected_auc(p: np.ndarray) -> float | None:
    """The area under the expected ROC curve: with the rows sorted by probability, each is a positive with
    probability ``p`` and a negative with ``1 - p``."""
    positives, negatives = p.sum(), (1 - p).sum()
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-p, kind="stable")
    tpr = np.concatenate([[0.0], np.cumsum(p[order]) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - p[order]) / negatives])
    return float(np.trapezoid(tpr, fpr))


def realised_metrics(labels: Any, predicted: Any, proba: Any | None = None) -> dict[str, float | None]:
    """The same metrics from real labels (1 = positive): counts with numpy (a window has a million rows), the ROC
    AUC as the Mann-Whitney statistic of the probabilities' ranks (ties averaged, as ``roc_auc_score``)."""
    y = np.asarray(labels).ravel().astype(bool)
    yhat = np.asarray(predicted).ravel().astype(bool)
    if y.size != yhat.size:
        raise InvalidArgument.for_field("predicted", f"{yhat.size} values", f"one per label ({y.size})")
    if not y.size:
        return dict.fromkeys(ESTIMATED_METRICS)
    tp = int(np.count_nonzero(y & yhat))
    fp = int(np.count_nonzero(~y & yhat))
    fn = int(np.count_nonzero(y & ~yhat))
    positives = tp + fn
    return {
        "accuracy": float(np.count_nonzero(y == yhat)) / y.size,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / positives if positives else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": _auc(y, _probabilities(proba, "proba")) if proba is not None and 0 < positives < y.size else None,
    }


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = int(np.count_nonzero(y))
    negatives = y.size - positives
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass
class Estimator:
    """CBPE for one binary classifier: ``fit`` on a labelled reference (its probabilities and labels), then
    ``estimate`` any window's metrics from its probabilities alone."""

    calibrator: Any = None

    def fit(self, proba: Any, labels: Any) -> Estimator:
        """Calibrate on a labelled reference (isotonic regression of labels on positive-class probabilities);
        needs at least 20 rows, both classes present. Returns ``self``."""
        from sklearn.isotonic import IsotonicRegression

        p = _probabilities(proba, "proba")
        y = np.asarray(labels).ravel().astype(int)
        if p.size != y.size or p.size < 20 or len(set(y.tolist())) != 2:
            expected = "at least 20 labelled rows of both classes, one per probability"
            raise InvalidArgument.for_field("labels", f"{y.size} labels", expected)
        self.calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return self

    def calibrated(self, proba: Any) -> np.ndarray:
        """The probabilities calibrated by ``fit`` (as given when not fitted); values must lie in [0, 1]."""
        p = _probabilities(proba, "proba")
        return p if self.calibrator is None else np.asarray(self.calibrator.predict(p), dtype=np.float64)

    def estimate(self, proba: Any, predicted: Any) -> dict[str, float | None]:
        """A window's expected metrics (accuracy, precision, recall, F1, ROC AUC) from its probabilities and
        predictions alone, no labels needed: ``expected_metrics`` of the calibrated probabilities."""
        return expected_metrics(self.calibrated(proba), predicted)
