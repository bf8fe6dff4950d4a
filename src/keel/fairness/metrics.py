"""Per-group metrics of a binary classifier with fairlearn's ``MetricFrame``, and the disparities between the groups.

>>> sets = group_sets(y_true, y_pred, sensitive_frame, y_score=proba)   # doctest: +SKIP
>>> sets[-1].frame                      # one row per group (the intersection of every sensitive feature)
>>> sets[-1].demographic_parity_difference

Labels arrive as 0/1 (``1``: the positive class), so fairlearn's metrics need no ``pos_label``. One ``MetricFrame`` per
set of sensitive features (each feature, then their intersection) applies ONE function per group that returns every
metric (fairlearn's selection rate, TPR, FPR and count, scikit-learn's accuracy and AUC): a ``MetricFrame`` copies each
group's columns element by element for every function it applies, so six functions cost six copies of the data where
one costs one (about 4x faster on a million rows). AUC reads the scores as a per-row sample parameter, which the frame
splits by group as it splits the labels. The differences and ratios use fairlearn's ``between_groups`` definitions
(largest minus smallest, smallest over largest, NaN groups skipped); equalized odds is the worse of the TPR and FPR
figures, as in ``fairlearn.metrics.equalized_odds_difference``. tests/fairness/test_assess.py checks every number
against fairlearn called directly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidArgument, MissingExtra

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["DIRECTION", "MAX_GROUPS", "RATES", "GroupSet", "finite", "group_metrics", "group_sets"]

RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy", "auc")  # per group, summarised
COLUMNS = (*RATES, "count")  # the columns of a group table
# which end of a metric is the worse one for a group: None where neither is (a selection rate is neither good nor bad)
DIRECTION: dict[str, str | None] = {
    "selection_rate": None, "true_positive_rate": "min", "false_positive_rate": "max", "accuracy": "min", "auc": "min",
}  # fmt: skip
MAX_GROUPS = 1_000  # per set: beyond, the "sensitive feature" is an identifier and every group a handful of rows


def fairlearn_metrics() -> Any:
    import importlib

    try:  # by name: fairlearn ships no type information, and its metrics are called as data here
        return importlib.import_module("fairlearn.metrics")
    except ImportError:
        raise MissingExtra("fairlearn", "fairness") from None


def _auc(y_true: Any, y_pred: Any, y_score: Any) -> float:
    """ROC AUC of one group's scores; NaN where the group holds one class only (AUC is undefined there)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return math.nan
    return float(roc_auc_score(y_true, y_score))


def group_metrics(y_true: Any, y_pred: Any, y_score: Any = None) -> tuple[float, ...]:
    """One group's metrics, in ``RATES`` order (AUC only with scores) then the count: fairlearn's selection rate,
    TPR, FPR and count, scikit-learn's accuracy and ROC AUC. One function for all of them, because a ``MetricFrame``
    copies a group's columns element by element for every metric function it applies: one function, one copy."""
    from sklearn.metrics import accuracy_score

    fm = fairlearn_metrics()
    values = [
        float(fm.selection_rate(y_true, y_pred)),
        float(fm.true_positive_rate(y_true, y_pred)),
        float(fm.false_positive_rate(y_true, y_pred)),
        float(accuracy_score(y_true, y_pred)),
    ]
    if y_score is not None:
        values.append(_auc(y_true, y_pred, y_score))
    return (*values, float(fm.count(y_true, y_pred)))


def finite(x: Any) -> float | None:
    """``x`` as a float, or None when it is not a finite number (NaN, infinite, not a number at all)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class GroupSet:
    """The metrics over one set of sensitive features (one feature, or the intersection of several): ``frame`` has a
    row per group (its index: the group's values) and a column per metric; ``overall`` the same metrics on every row;
    ``difference`` and ``ratio`` per metric between the groups (largest minus smallest, smallest over largest)."""

    features: tuple[str, ...]
    frame: pd.DataFrame = field(repr=False)
    overall: dict[str, float | None]
    difference: dict[str, float | None]
    ratio: dict[str, float | None]

    @property
    def key(self) -> str:
        """How this set is named in reports and keys: ``sex``, or ``sex & race`` for an intersection."""
        return " & ".join(self.features)

    @property
    def demographic_parity_difference(self) -> float | None:
        """The largest minus the smallest selection rate of the groups (0 is parity)."""
        return self.difference.get("selection_rate")

    @property
    def demographic_parity_ratio(self) -> float | None:
        """The smallest over the largest selection rate of the groups (1 is parity)."""
        return self.ratio.get("selection_rate")

    @property
    def equalized_odds_difference(self) -> float | None:
        """The larger of the TPR and FPR differences between the groups (0: equal error rates)."""
        values = [self.difference.get("true_positive_rate"), self.difference.get("false_positive_rate")]
        return None if any(v is None for v in values) else max(v for v in values if v is not None)

    @property
    def equalized_odds_ratio(self) -> float | None:
        """The smaller of the TPR and FPR ratios between the groups (1: equal error rates)."""
        values = [self.ratio.get("true_positive_rate"), self.ratio.get("false_positive_rate")]
        return None if any(v is None for v in values) else min(v for v in values if v is not None)

    def disparities(self) -> dict[str, float | None]:
        """The four disparities by name (None where undefined, e.g. no group has a positive label)."""
        return {
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
            "equalized_odds_ratio": self.equalized_odds_ratio,
        }

    def group_labels(self) -> list[dict[str, str]]:
        """Each group (in ``frame``'s order) as ``{feature: value}``, values as text."""
        labels = []
        for idx in self.frame.index:
            values = idx if isinstance(idx, tuple) else (idx,)
            labels.append({f: str(v) for f, v in zip(self.features, values, strict=True)})
        return labels

    def extreme(self, metric: str, end: str) -> tuple[dict[str, str], float] | None:
        """The group at the ``end`` (``min``/``max``) of ``metric`` and its value; None without a finite value."""
        if metric not in self.frame.columns:
            return None
        values = [(v, i) for i, v in enumerate(finite(x) for x in self.frame[metric]) if v is not None]
        if not values:
            return None
        value, position = (min if end == "min" else max)(values, key=lambda pair: pair[0])
        return self.group_labels()[position], value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the features, one entry per group (its values, count and metrics; None where undefined), the
        overall metrics, differences, ratios and the four disparities."""
        groups = []
        for label, (_, row) in zip(self.group_labels(), self.frame.iterrows(), strict=True):
            entry: dict[str, Any] = {"group": label, "count": int(row["count"])}
            entry.update({m: finite(row[m]) for m in RATES if m in row.index})
            groups.append(entry)
        return {
            "features": list(self.features),
            "groups": groups,
            "overall": dict(self.overall),
            "difference": dict(self.difference),
            "ratio": dict(self.ratio),
            **self.disparities(),
        }


def _check_groups(features: Sequence[str], n_groups: int) -> None:
    if n_groups > MAX_GROUPS:
        what = "a feature with" if len(features) == 1 else "features whose intersection has"
        raise InvalidArgument.for_field(
            "sensitive", ", ".join(features), f"{what} at most {MAX_GROUPS:,} groups (this forms {n_groups:,}: an identifier?)"
        )


def _n_groups(sf: Any, features: tuple[str, ...]) -> int:
    if len(features) == 1:
        return int(sf.nunique())
    bound = math.prod(int(sf[f].nunique()) for f in features)
    return bound if bound <= MAX_GROUPS else len(sf.drop_duplicates())  # exact only when the bound is too high


def _between(values: list[float]) -> tuple[float | None, float | None]:
    """fairlearn's ``between_groups`` difference (largest minus smallest) and ratio (smallest over largest; 0/0 is
    undefined), over the groups' finite values."""
    if not values:
        return None, None
    low, high = min(values), max(values)
    return finite(high - low), (finite(low / high) if high != 0 else None)


def _one_set(
    features: tuple[str, ...], y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame, y_score: np.ndarray | None
) -> GroupSet:
    import pandas as pd

    fm = fairlearn_metrics()
    sf: Any = sensitive[features[0]] if len(features) == 1 else sensitive[list(features)]
    _check_groups(features, _n_groups(sf, features))
    params = {"metrics": {"y_score": y_score}} if y_score is not None else None
    mf = fm.MetricFrame(metrics={"metrics": group_metrics}, y_true=y_true, y_pred=y_pred, sensitive_features=sf,
                        sample_params=params)  # fmt: skip
    columns = [*(RATES if y_score is not None else RATES[:-1]), "count"]
    by_group = mf.by_group["metrics"]
    # an intersection lists every combination of the features' values; one that no row has is no group (NaN where
    # the others have a tuple of metrics, which fairlearn's differences would skip too)
    kept = [i for i, v in enumerate(by_group) if isinstance(v, tuple)]
    frame = pd.DataFrame([by_group.iloc[i] for i in kept], columns=columns, index=by_group.index[kept])
    frame["count"] = frame["count"].astype("int64")
    overall = dict(zip(columns, mf.overall["metrics"], strict=True))
    rates = columns[:-1]
    between = {m: _between([v for v in (finite(x) for x in frame[m]) if v is not None]) for m in rates}
    return GroupSet(
        features=features,
        frame=frame,
        overall={m: finite(overall[m]) for m in rates},
        difference={m: between[m][0] for m in rates},
        ratio={m: between[m][1] for m in rates},
    )


def group_sets(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: pd.DataFrame, y_score: np.ndarray | None = None
) -> list[GroupSet]:
    """The metrics per group of each sensitive feature (``sensitive``'s columns), then, with two features or more, of
    their intersection. ``y_true`` and ``y_pred``: 0/1 arrays; ``y_score``: the positive class's scores (for AUC)."""
    features = [str(c) for c in sensitive.columns]
    sets: list[tuple[str, ...]] = [(f,) for f in features]
    if len(features) > 1:
        sets.append(tuple(features))
    with warnings.catch_warnings():
        # a group holding one class makes scikit-learn warn about an undefined rate; the frame shows it as 0 or NaN
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return [_one_set(s, y_true, y_pred, sensitive, y_score) for s in sets]
