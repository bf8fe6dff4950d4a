"""Inter-annotator agreement: Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha, per class and over time.

Every function takes the annotations frame (``keel.label.frames.annotations_frame``) and, optionally, the project's
schema (inferred from the values when omitted); the frame is coded into units first (``frames.units``): multilabel
answers as one binary decision per class, numbers at the interval level, spans one label per character.

Krippendorff's alpha is computed here in closed form from the per-unit value counts (one pass, memory linear in the
annotations), not with the ``krippendorff`` package: the package builds a units x values x values array, which for
numbers (every distinct value is a "value") or spans (every character a unit) does not fit in memory. The tests
check this implementation against the package and Krippendorff's published examples.

``None`` stands for "not defined": fewer than two answers on any unit, or no variation at all (every answer the same
value, so chance agreement is already perfect).
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidArgument
from keel.core.labeling import LabelSchema
from keel.label.frames import infer_schema, require_pandas, units

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["alpha_of_units", "cohen_pairs", "fleiss_kappa", "krippendorff_alpha", "over_time", "per_class", "summary"]

LEVELS = ("nominal", "interval")


def cohen_pairs(frame: pd.DataFrame, schema: LabelSchema | None = None) -> pd.DataFrame:
    """Cohen's kappa (scikit-learn's ``cohen_kappa_score``) of every pair of annotators over the units both coded.

    ``items`` is how many items the pair shares; ``kappa`` is None when they share fewer than 2 units or it is
    undefined (both gave one same label throughout). Numbers have no kappa: use ``krippendorff_alpha``.
    """
    pd = require_pandas()
    schema = schema or infer_schema(frame)
    if schema.kind == "number":
        raise InvalidArgument.for_field("schema.kind", "number", "classes, multilabel or spans (numbers: krippendorff_alpha)")
    u = units(frame, schema).drop_duplicates(["unit", "annotator"])
    by_annotator = {a: g.set_index("unit") for a, g in u.groupby("annotator", sort=True)}
    rows = []
    for a, b in combinations(sorted(by_annotator), 2):
        ga, gb = by_annotator[a], by_annotator[b]
        shared = ga.index.intersection(gb.index)
        items = int(ga.loc[shared, "item"].nunique()) if len(shared) else 0
        kappa = _kappa(ga.loc[shared, "code"], gb.loc[shared, "code"]) if len(shared) >= 2 else None
        rows.append({"annotator_a": a, "annotator_b": b, "items": items, "kappa": kappa})
    return _with_none(pd.DataFrame(rows, columns=["annotator_a", "annotator_b", "items", "kappa"]), "kappa")


def _kappa(a: pd.Series, b: pd.Series) -> float | None:
    import math
    import warnings

    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():  # 0/0 when both gave one same label: sklearn warns and returns nan
        warnings.simplefilter("ignore", RuntimeWarning)
        k = float(cohen_kappa_score(a.astype(str).to_numpy(), b.astype(str).to_numpy()))
    return None if math.isnan(k) else k


def fleiss_kappa(frame: pd.DataFrame, schema: LabelSchema | None = None) -> float | None:
    """Fleiss' kappa over the units with at least 2 answers.

    Items may have different numbers of answers: each unit's observed agreement is computed with its own count
    (``sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))``) and averaged over units with equal weight, and the chance agreement
    uses the class shares over all those answers; with a constant count this is Fleiss (1971) exactly.
    """
    schema = schema or infer_schema(frame)
    if schema.kind == "number":
        raise InvalidArgument.for_field("schema.kind", "number", "classes, multilabel or spans (numbers: krippendorff_alpha)")
    counts = _value_counts(units(frame, schema))
    m = counts.sum(axis=1)
    counts = counts[m >= 2]
    if counts.empty:
        return None
    m = counts.sum(axis=1)
    p_i = ((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))).mean()
    shares = counts.sum(axis=0) / m.sum()
    p_e = float((shares**2).sum())
    if p_e >= 1.0:
        return None
    return float((p_i - p_e) / (1.0 - p_e))


def _value_counts(u: pd.DataFrame) -> pd.DataFrame:
    """Units x codes: how many annotators gave each code to each unit."""
    return u.groupby(["unit", "code"], sort=False).size().unstack("code", fill_value=0)


def krippendorff_alpha(frame: pd.DataFrame, level: str = "nominal", schema: LabelSchema | None = None) -> float | None:
    """Krippendorff's alpha at ``level`` (``nominal`` or ``interval``) over the coded units (``interval`` for numbers)."""
    if level not in LEVELS:
        raise InvalidArgument.for_field("level", level, "nominal or interval")
    schema = schema or infer_schema(frame)
    return alpha_of_units(units(frame, schema), level)


def alpha_of_units(u: pd.DataFrame, level: str = "nominal") -> float | None:
    """Krippendorff's alpha of coded units (``frames.units``' shape: ``unit`` and ``code`` columns)."""
    u = u[u["unit"].map(u["unit"].value_counts()) >= 2]  # only pairable values count
    n = len(u)
    if n < 2:
        return None
    if level == "interval":
        v = u["code"].astype(float)
        g = v.groupby(u["unit"].to_numpy(), sort=False)
        m, s1, s2 = g.size(), g.sum(), (v**2).groupby(u["unit"].to_numpy(), sort=False).sum()
        observed = float((2.0 * (m * s2 - s1**2) / (m - 1)).sum()) / n
        expected = 2.0 * (n * float((v**2).sum()) - float(v.sum()) ** 2) / (n * (n - 1))
    else:
        counts = _value_counts(u)
        m = counts.sum(axis=1)
        observed = float(((m**2 - (counts**2).sum(axis=1)) / (m - 1)).sum()) / n
        totals = counts.sum(axis=0)
        expected = (n**2 - float((totals**2).sum())) / (n * (n - 1))
    if expected <= 1e-12 * max(1.0, observed):
        return None
    return 1.0 - observed / expected


def per_class(frame: pd.DataFrame, classes: Any = None, schema: LabelSchema | None = None) -> pd.DataFrame:
    """Nominal alpha of each class one-vs-rest (was this class chosen, or not), and its ``support``: the answers
    choosing it (characters labelled with it, for spans)."""
    pd = require_pandas()
    schema = schema or infer_schema(frame)
    if schema.kind == "number":
        raise InvalidArgument.for_field("schema.kind", "number", "classes, multilabel or spans")
    classes = list(classes if classes is not None else schema.classes)
    u = units(frame, schema)
    rows = []
    for c in classes:
        if schema.kind == "multilabel":
            one = u[u["cls"] == c]
            chosen = one["code"] == 1
        else:
            one = u
            chosen = u["code"] == c
        alpha = alpha_of_units(one.assign(code=chosen.astype(int)), "nominal")
        rows.append({"class": c, "alpha": alpha, "support": int(chosen.sum())})
    return _with_none(pd.DataFrame(rows, columns=["class", "alpha", "support"]), "alpha")


def over_time(frame: pd.DataFrame, period_ms: int, schema: LabelSchema | None = None) -> pd.DataFrame:
    """Alpha per window of ``period_ms``: an item belongs to the window of its last answer (when its answers are all
    in), and ``annotations`` counts the answers on those items. Windows with no finished item are not listed."""
    pd = require_pandas()
    if isinstance(period_ms, bool) or not isinstance(period_ms, int) or period_ms <= 0:
        raise InvalidArgument.for_field("period_ms", period_ms, "a positive number of milliseconds")
    schema = schema or infer_schema(frame)
    level = "interval" if schema.kind == "number" else "nominal"
    u = units(frame, schema)
    last = frame.groupby(frame["item"].astype(str))["created_at"].max()
    window = (last // period_ms) * period_ms
    u = u.assign(start_ms=u["item"].map(window).astype("int64"))
    answers = frame.assign(start_ms=frame["item"].astype(str).map(window)).groupby("start_ms").size()
    rows = [{"start_ms": int(start), "annotations": int(answers.get(start, 0)), "alpha": alpha_of_units(g, level)}
            for start, g in u.groupby("start_ms", sort=True)]  # fmt: skip
    return _with_none(pd.DataFrame(rows, columns=["start_ms", "annotations", "alpha"]), "alpha")


def _with_none(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` as objects, so an undefined value reads as None (pandas would make it NaN)."""
    df[column] = df[column].astype(object).where(df[column].notna(), None)
    return df


def summary(frame: pd.DataFrame, schema: LabelSchema, *, period_ms: int = 86_400_000) -> dict[str, Any]:
    """Every measure above as JSON data (the report's and ``keel label status --json``'s agreement section)."""
    level = "interval" if schema.kind == "number" else "nominal"
    out: dict[str, Any] = {
        "kind": schema.kind,
        "level": level,
        "items": int(frame["item"].nunique()),
        "annotations": len(frame),
        "annotators": int(frame["annotator"].nunique()),
        "alpha": krippendorff_alpha(frame, level, schema) if len(frame) else None,
        "fleiss_kappa": None,
        "pairs": [],
        "per_class": [],
        "over_time": [],
    }
    if not len(frame):
        return out
    if schema.kind != "number":
        out["fleiss_kappa"] = fleiss_kappa(frame, schema)
        out["pairs"] = _records(cohen_pairs(frame, schema))
        out["per_class"] = _records(per_class(frame, schema=schema))
    if "created_at" in frame:
        out["over_time"] = _records(over_time(frame, period_ms, schema))
    return out


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python (ints, floats, None for missing), ready for JSON."""
    import math

    rows: list[dict[str, Any]] = []
    for rec in df.to_dict("records"):
        clean = {}
        for k, v in rec.items():
            if hasattr(v, "item"):
                v = v.item()
            clean[str(k)] = None if isinstance(v, float) and math.isnan(v) else v
        rows.append(clean)
    return rows
