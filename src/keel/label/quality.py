"""Annotator quality: accuracy on gold items, agreement with the other annotators, time spent, drift over time, and
the confusion between annotators.

Gold scoring by kind: a class is right or wrong; a multilabel answer scores its Jaccard overlap with the gold set;
a number is right within 5% of the scale (the schema's range, else the range of the answers and gold values); spans
score the character-level F1 of (character, label) pairs against the gold spans. Two empty answers agree fully.

Agreement with the others: Cohen's kappa between the annotator's codes and every other annotator's codes on the same
units (pooled pairs), or, for numbers, interval alpha with each such pair a unit.

The flag rule (``annotator_scores``): at least ``min_gold`` gold answers and gold accuracy below ``gold_floor``, or at
least ``min_pairs`` pairs with the others and agreement below ``agreement_floor``. ``drifting`` applies, per period, the
same floors, a drop rule: the period's gold accuracy lower than the annotator's own over all earlier periods by more
than ``drop``, each side with at least ``min_gold`` gold answers; and a gap rule, for projects with little gold: the
period's agreement lower than the median of all annotators' agreement in that period by more than ``agreement_gap``
(with ``min_pairs`` pairs). Agreement is compared with the peers of the same period, not with the annotator's past:
when one annotator goes wrong, everyone's agreement with them falls, and only theirs falls below their peers'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidArgument
from keel.core.labeling import LabelSchema
from keel.label.agreement import alpha_of_units
from keel.label.consensus import NUMBER_TOLERANCE
from keel.label.frames import OUTSIDE, infer_schema, require_pandas, units

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NONE", "annotator_scores", "confusion", "drifting", "gold_score"]

NONE = "(none)"  # the confusion matrix's row/column for "no class" (an empty multilabel answer, text outside spans)
SCORE_COLUMNS = ["annotator", "answered", "gold_answered", "gold_accuracy", "agreement", "median_time_ms", "flagged", "reason"]
DRIFT_COLUMNS = ["annotator", "start_ms", "answered", "gold_answered", "gold_accuracy", "agreement", "flagged", "reason"]


def gold_score(schema: LabelSchema, value: Any, gold: Any, tolerance: float = 0.0) -> float:
    """How right ``value`` is against the ``gold`` answer, from 0 to 1 (see the module's docstring)."""
    if schema.kind == "classes":
        return float(value == gold)
    if schema.kind == "number":
        return float(abs(float(value) - float(gold)) <= tolerance + 1e-12)
    if schema.kind == "multilabel":
        a, g = set(value or ()), set(gold or ())
        return 1.0 if not a and not g else len(a & g) / len(a | g)
    a, g = _char_labels(value), _char_labels(gold)
    return 1.0 if not a and not g else 2.0 * len(a & g) / (len(a) + len(g))


def _char_labels(spans: Any) -> set[tuple[int, str]]:
    return {(ch, str(s["label"])) for s in spans or () for ch in range(int(s["start"]), int(s["end"]))}


def _tolerance(schema: LabelSchema, frame: pd.DataFrame, gold: Mapping[str, Any]) -> float:
    if schema.kind != "number":
        return 0.0
    if schema.minimum is not None and schema.maximum is not None:
        return NUMBER_TOLERANCE * (schema.maximum - schema.minimum)
    values = [float(v) for v in frame["value"]] + [float(v) for v in gold.values()]
    return NUMBER_TOLERANCE * (max(values) - min(values)) if values else 0.0


def _gold_column(frame: pd.DataFrame, gold: Mapping[str, Any], schema: LabelSchema) -> pd.Series:
    """Per row: its gold score, NaN where the item is not gold."""
    pd = require_pandas()
    tol = _tolerance(schema, frame, gold)
    keyed = {str(k): v for k, v in gold.items()}
    scores = [gold_score(schema, v, keyed[str(i)], tol) if str(i) in keyed else float("nan")
              for i, v in zip(frame["item"], frame["value"], strict=True)]  # fmt: skip
    return pd.Series(scores, index=frame.index, dtype=float)


def _pairs(u: pd.DataFrame) -> pd.DataFrame:
    """Every (annotator, other annotator) pair of codes on one unit, both orders."""
    left = u[["unit", "annotator", "code", "created_at"]]
    right = u[["unit", "annotator", "code"]].rename(columns={"annotator": "other", "code": "other_code"})
    pairs = left.merge(right, on="unit")
    return pairs[pairs["annotator"] != pairs["other"]]


def _agreement(pairs: pd.DataFrame, interval: bool) -> float | None:
    """One annotator's agreement with the others over ``pairs`` (see the module's docstring)."""
    import math
    import warnings

    if len(pairs) < 2:
        return None
    if interval:
        pd = require_pandas()
        n = len(pairs)
        stacked = pd.DataFrame({"unit": list(range(n)) * 2, "code": list(pairs["code"]) + list(pairs["other_code"])})
        return alpha_of_units(stacked, "interval")
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = float(cohen_kappa_score(pairs["code"].astype(str).to_numpy(), pairs["other_code"].astype(str).to_numpy()))
    return None if math.isnan(k) else k


def annotator_scores(frame: pd.DataFrame, gold: Mapping[str, Any], schema: LabelSchema | None = None, *, min_gold: int = 5,
                     gold_floor: float = 0.7, agreement_floor: float = 0.2, min_pairs: int = 10) -> pd.DataFrame:  # fmt: skip
    """One row per annotator: answers, gold answers and accuracy, agreement with the others, median time, and the
    flag with its reason (the rule is in the module's docstring)."""
    pd = require_pandas()
    schema = schema or infer_schema(frame)
    if not len(frame):
        return pd.DataFrame(columns=SCORE_COLUMNS)
    scored = frame.assign(_gold=_gold_column(frame, gold, schema), annotator=frame["annotator"].astype(str))
    if "created_at" in frame and "assigned_at" in frame:
        scored["_time"] = (frame["created_at"] - frame["assigned_at"]).clip(lower=0)
    else:
        scored["_time"] = float("nan")
    pairs = _pairs(units(frame, schema))
    pairs_by = dict(tuple(pairs.groupby("annotator", sort=False)))
    rows = []
    for annotator, g in scored.groupby("annotator", sort=True):
        graded = g["_gold"].dropna()
        accuracy = float(graded.mean()) if len(graded) else None
        mine = pairs_by.get(annotator, pairs.iloc[:0])
        agreement = _agreement(mine, schema.kind == "number")
        reasons = _reasons(accuracy, len(graded), agreement, len(mine), min_gold, gold_floor, agreement_floor, min_pairs)
        median = g["_time"].median()
        rows.append({"annotator": annotator, "answered": len(g), "gold_answered": len(graded), "gold_accuracy": accuracy,
                     "agreement": agreement, "median_time_ms": None if pd.isna(median) else float(median),
                     "flagged": bool(reasons), "reason": "; ".join(reasons)})  # fmt: skip
    return _with_none(pd.DataFrame(rows, columns=SCORE_COLUMNS), "gold_accuracy", "agreement", "median_time_ms")


def _reasons(accuracy: float | None, n_gold: int, agreement: float | None, n_pairs: int, min_gold: int, gold_floor: float,
             agreement_floor: float, min_pairs: int) -> list[str]:  # fmt: skip
    reasons = []
    if accuracy is not None and n_gold >= min_gold and accuracy < gold_floor:
        reasons.append(f"gold accuracy {accuracy:.2f} below {gold_floor:g} on {n_gold} gold answers")
    if agreement is not None and n_pairs >= min_pairs and agreement < agreement_floor:
        reasons.append(f"agreement with the others {agreement:.2f} below {agreement_floor:g} over {n_pairs} pairs")
    return reasons


def drifting(frame: pd.DataFrame, gold: Mapping[str, Any], schema: LabelSchema | None, period_ms: int, *, min_gold: int = 5,
             drop: float = 0.15, gold_floor: float = 0.7, agreement_gap: float = 0.3, agreement_floor: float = 0.2,
             min_pairs: int = 10) -> pd.DataFrame:  # fmt: skip
    """Per annotator and period of ``period_ms`` (by when they answered): gold accuracy and agreement in that period,
    flagged by the floors and the drop rule of the module's docstring."""
    pd = require_pandas()
    if isinstance(period_ms, bool) or not isinstance(period_ms, int) or period_ms <= 0:
        raise InvalidArgument.for_field("period_ms", period_ms, "a positive number of milliseconds")
    schema = schema or infer_schema(frame)
    if not len(frame):
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    scored = frame.assign(_gold=_gold_column(frame, gold, schema), annotator=frame["annotator"].astype(str),
                          start_ms=(frame["created_at"] // period_ms) * period_ms)  # fmt: skip
    pairs = _pairs(units(frame, schema))
    pairs = pairs.assign(start_ms=(pairs["created_at"] // period_ms) * period_ms)
    interval = schema.kind == "number"
    rows = []
    for annotator, g in scored.groupby("annotator", sort=True):
        mine = pairs[pairs["annotator"] == annotator]
        for start in sorted(g["start_ms"].unique()):
            now, before = g[g["start_ms"] == start], g[g["start_ms"] < start]
            p_now = mine[mine["start_ms"] == start]
            acc, n_gold = _mean(now["_gold"]), int(now["_gold"].notna().sum())
            agr = _agreement(p_now, interval)
            reasons = _reasons(acc, n_gold, agr, len(p_now), min_gold, gold_floor, agreement_floor, min_pairs)
            earlier, n_earlier = _mean(before["_gold"]), int(before["_gold"].notna().sum())
            if acc is not None and earlier is not None and n_gold >= min_gold and n_earlier >= min_gold and earlier - acc > drop:
                reasons.append(f"gold accuracy fell from {earlier:.2f} to {acc:.2f} (more than {drop:g})")
            rows.append({"annotator": annotator, "start_ms": int(start), "answered": len(now), "gold_answered": n_gold,
                         "gold_accuracy": acc, "agreement": agr, "_pairs": len(p_now), "_reasons": reasons})  # fmt: skip
    _gap_rule(rows, agreement_gap, min_pairs)
    for row in rows:
        reasons = row.pop("_reasons")
        row.pop("_pairs")
        row["flagged"], row["reason"] = bool(reasons), "; ".join(reasons)
    return _with_none(pd.DataFrame(rows, columns=DRIFT_COLUMNS), "gold_accuracy", "agreement")


def _gap_rule(rows: list[dict[str, Any]], gap: float, min_pairs: int) -> None:
    """Add a reason to each period row whose agreement trails the period's median by more than ``gap``."""
    import statistics

    by_period: dict[int, list[float]] = {}
    for row in rows:
        if row["agreement"] is not None and row["_pairs"] >= min_pairs:
            by_period.setdefault(row["start_ms"], []).append(row["agreement"])
    for row in rows:
        peers = by_period.get(row["start_ms"], [])
        if row["agreement"] is None or row["_pairs"] < min_pairs or len(peers) < 3:
            continue
        median = statistics.median(peers)
        if median - row["agreement"] > gap:
            row["_reasons"].append(
                f"agreement {row['agreement']:.2f} trails the period's median {median:.2f} by more than {gap:g}"
            )


def _mean(s: pd.Series) -> float | None:
    s = s.dropna()
    return float(s.mean()) if len(s) else None


def confusion(frame: pd.DataFrame, classes: Any = None, schema: LabelSchema | None = None) -> pd.DataFrame:
    """Counts of (label by one annotator, label by another) over every ordered pair of annotators on the same unit:
    symmetric, the diagonal is agreement. Multilabel answers count each chosen class (``(none)`` for an empty
    answer); spans count per character (``(none)`` outside spans)."""
    pd = require_pandas()
    schema = schema or infer_schema(frame)
    if schema.kind == "number":
        raise InvalidArgument.for_field("schema.kind", "number", "classes, multilabel or spans")
    names = [*(classes if classes is not None else schema.classes)]
    if schema.kind == "multilabel":
        exploded = frame.assign(value=[list(v) if v else [NONE] for v in frame["value"]]).explode("value")
        u = exploded.assign(
            unit=exploded["item"].astype(str), code=exploded["value"], annotator=exploded["annotator"].astype(str)
        )
        u = u.assign(created_at=0)
        names = [*names, NONE]
    else:
        u = units(frame, schema)
        if schema.kind == "spans":
            u = u.assign(code=u["code"].where(u["code"] != OUTSIDE, NONE))
            names = [*names, NONE]
    pairs = _pairs(u[["unit", "annotator", "code", "created_at"]])
    table = pd.crosstab(pairs["code"], pairs["other_code"]) if len(pairs) else pd.DataFrame()
    extra = sorted((set(table.index) | set(table.columns)) - set(names), key=str)
    order = names + extra
    out = table.reindex(index=order, columns=order, fill_value=0).astype("int64")
    out.index.name, out.columns.name = "label", "other_label"
    return out


def _with_none(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        df[column] = df[column].astype(object).where(df[column].notna(), None)
    return df
