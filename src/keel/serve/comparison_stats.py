"""The statistics of a deployment comparison: class labels and numbers from logged JSON, metrics as functions of
row weights, and the bootstrap of a difference.

A metric is computed from weights (one per row): ones give the estimate, a resample's counts give one bootstrap
replicate, so no resampled copy of the rows is ever built (1,000 replicates of 100,000 rows stay O(n) each).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BOOTSTRAP = 1000
SEED = 0
CONFIDENCE = 0.95
HIGHER_IS_BETTER = {"accuracy": True, "roc_auc": True, "log_loss": False, "mae": False, "rmse": False}

Scorer = Callable[[np.ndarray], float]  # a metric of fixed rows, given a weight per row (bootstrap counts)


# ---- values -------------------------------------------------------------------------------------------------


def scalar(value: Any) -> Any:
    """A row's output: a one-element list (a model returning ``[[y]]``) is its element."""
    while isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return value


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def label_key(value: Any) -> str:
    """A class label as text, so 1, 1.0 and "1" from JSON meet as one class (and True as "true")."""
    value = scalar(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def number(value: Any) -> float:
    value = scalar(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def task_of(outputs: Sequence[Any], has_proba: bool) -> str:
    """Classification when models log probabilities or answer with text, bools or few integers; else regression."""
    values = [scalar(v) for v in outputs if not is_missing(v)]
    if not values:
        return "unknown"
    if has_proba or any(isinstance(v, (str, bool, dict, list)) for v in values):
        return "classification"
    numbers = np.array([number(v) for v in values])
    integral = bool(np.all(np.isfinite(numbers) & (numbers == np.round(numbers))))
    return "classification" if integral and len(np.unique(numbers)) <= 50 else "regression"


def positive_score(proba: Any) -> float:
    """The probability of the second class of a binary classifier's ``[p0, p1]``; NaN otherwise."""
    if isinstance(proba, (list, tuple)) and len(proba) == 2:
        p = number(proba[1])
        return p if 0.0 <= p <= 1.0 else math.nan
    return math.nan


def positive_class(outputs: Sequence[Any], probas: Sequence[Any], labels: Sequence[Any]) -> str | None:
    """Which class ``proba[1]`` is: the output of rows whose second probability wins; else "1" for 0/1 labels."""
    winners = {label_key(o) for o, p in zip(outputs, probas, strict=True) if not is_missing(o) and positive_score(p) > 0.5}
    losers = {label_key(o) for o, p in zip(outputs, probas, strict=True) if not is_missing(o) and positive_score(p) < 0.5}
    if len(winners) == 1 and not winners & losers:
        return winners.pop()
    known = {label_key(v) for v in labels if not is_missing(v)} | winners | losers
    return "1" if known and known <= {"0", "1"} else None


# ---- weighted metrics (a weight per row: ones for the estimate, bootstrap counts for a resample) ------------


def _mean_of(per_row: np.ndarray) -> Scorer:
    return lambda w: float(w @ per_row / w.sum())


def _rmse_of(err: np.ndarray) -> Scorer:
    sq = err * err
    return lambda w: math.sqrt(float(w @ sq / w.sum()))


def _auc_of(score: np.ndarray, positive: np.ndarray) -> Scorer:
    """Weighted ROC AUC: the chance a positive outranks a negative (ties count half), in one pass over sorted scores."""
    values, inverse = np.unique(score, return_inverse=True)
    pos = positive.astype(float)

    def auc(w: np.ndarray) -> float:
        wp = np.bincount(inverse, weights=w * pos, minlength=len(values))
        wn = np.bincount(inverse, weights=w * (1.0 - pos), minlength=len(values))
        total_p, total_n = wp.sum(), wn.sum()
        if total_p == 0 or total_n == 0:
            return math.nan
        below = np.cumsum(wn) - wn
        return float(wp @ (below + 0.5 * wn) / (total_p * total_n))

    return auc


def scorers(task: str, labels: list[Any], outputs: list[Any], probas: list[Any], positive: str | None) -> dict[str, Scorer]:
    """The metrics of one model on its labeled rows, as functions of row weights."""
    if task == "regression":
        err = np.array([number(o) - number(y) for o, y in zip(outputs, labels, strict=True)])
        return {"mae": _mean_of(np.abs(err)), "rmse": _rmse_of(err)}
    out: dict[str, Scorer] = {
        "accuracy": _mean_of(np.array([label_key(o) == label_key(y) for o, y in zip(outputs, labels, strict=True)], dtype=float))
    }
    scores = np.array([positive_score(p) for p in probas])
    if positive is not None and len(scores) and np.all(np.isfinite(scores)):
        y = np.array([label_key(v) == positive for v in labels])
        out["roc_auc"] = _auc_of(scores, y)
        p_true = np.clip(np.where(y, scores, 1.0 - scores), 1e-15, 1.0)
        out["log_loss"] = _mean_of(-np.log(p_true))
    return out


def _request_weights(rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
    """Row weights of one resample of whole requests: a request drawn k times weighs k on each of its rows."""
    n = int(groups.max()) + 1 if len(groups) else 0
    weights: np.ndarray = np.bincount(rng.integers(0, n, n), minlength=n)[groups].astype(float)
    return weights


def bootstrap_cis(
    challenger: dict[str, Scorer],
    reference: dict[str, Scorer],
    groups_c: np.ndarray,
    groups_r: np.ndarray,
    *,
    paired: bool,
    seed: int = SEED,
) -> dict[str, tuple[float, float]]:
    """Percentile CIs of ``challenger[m] - reference[m]`` for each metric ``m``. Requests are resampled, not rows
    (``groups_*``: each row's request index): the rows of one request share their inputs and often their outcome,
    and resampling them as independent rows made intervals too narrow. Paired: one resample for both sides (row
    ``i`` is the same request on each); unpaired: each side alone."""
    rng = np.random.default_rng(seed)
    diffs = {m: np.empty(BOOTSTRAP) for m in challenger}
    for b in range(BOOTSTRAP):
        w_c = _request_weights(rng, groups_c)
        w_r = w_c if paired else _request_weights(rng, groups_r)
        for m, d in diffs.items():
            d[b] = challenger[m](w_c) - reference[m](w_r)
    tail = (1 - CONFIDENCE) / 2 * 100
    out = {}
    for m, d in diffs.items():
        if np.all(np.isnan(d)):  # e.g. ROC AUC when every resample held one class only
            out[m] = (math.nan, math.nan)
            continue
        low, high = np.nanpercentile(d, [tail, 100 - tail])
        out[m] = (float(low), float(high))
    return out


def verdict_of(metric: str, low: float, high: float) -> str:
    if low > 0 or high < 0:
        return "better" if (low > 0) == HIGHER_IS_BETTER[metric] else "worse"
    return "no significant difference"
