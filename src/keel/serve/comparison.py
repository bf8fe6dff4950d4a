"""Compare a deployment's models from its prediction log: traffic, latency, agreement, drift, metrics with a CI.

>>> c = keel.serve.compare("churn", since="1h")                      # doctest: +SKIP
>>> c.challengers[0].verdict                                          # doctest: +SKIP
'challenger worse than models:/churn/3 on accuracy at 95% (-0.120, CI [-0.151, -0.089], n=400 paired rows)'

The reference is the primary model (the one with most primary rows in the window, unless named). A shadow ran
on the same inputs, so it is compared row by row with the reference's output on the same ``(request_id, row)``
(agreement, paired drift test, paired bootstrap). A canary (or an earlier primary) saw other requests, so it is
compared as two samples (no agreement; unpaired drift test and bootstrap). Output distributions are tested with
``keel.data.drift_detection.drift`` (chi-square or Jensen-Shannon for labels, KS or Wasserstein for numbers).

Metrics use the labeled rows (``keel.serve.log_labels``): accuracy, and ROC AUC and log loss for binary
classifiers that log probabilities; MAE and RMSE for regression. The 95% confidence interval on the difference
(challenger minus reference) is a percentile bootstrap with a fixed seed, so the same log gives the same
numbers. Below ``MIN_ROWS`` rows the comparison says how many there are and how many it needs, rather than
print numbers that are noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.core.errors import InvalidArgument, MissingExtra
from keel.serve.comparison_stats import (
    BOOTSTRAP,
    CONFIDENCE,
    SEED,
    bootstrap_cis,
    is_missing,
    label_key,
    number,
    positive_class,
    positive_score,
    scorers,
    task_of,
    verdict_of,
)

if TYPE_CHECKING:
    from keel.context import Context

__all__ = ["Agreement", "Challenger", "Comparison", "Distribution", "MetricDifference", "ModelSummary", "OutputDrift"]
__all__ += ["compare", "compare_frame"]

MIN_ROWS = 30  # per side, for a drift test or a metric's confidence interval
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 12


@dataclass(frozen=True)
class Latency:
    """Model-call latency in ms, one value per request (the rows of a request share one call)."""

    calls: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class Distribution:
    """Shares of a model's outputs on bins shared by every model (categories, or numeric bins by left edge)."""

    kind: str  # "categorical" or "numeric"
    bins: tuple[str, ...]
    shares: tuple[float, ...]


@dataclass(frozen=True)
class ModelSummary:
    """One (route, model): ``share`` is the share of the window's requests it saw (served, or mirrored by a shadow)."""

    route: str
    model: str
    rows: int
    requests: int
    share: float
    latency_ms: Latency
    labeled: int
    metrics: dict[str, float]
    distributions: dict[str, Distribution] = field(default_factory=dict)


@dataclass(frozen=True)
class Agreement:
    """A shadow's outputs against the reference's on the same rows: equal labels, or differences of numbers."""

    pairs: int
    rate: float | None = None  # classification
    mean_abs_diff: float | None = None  # regression
    max_abs_diff: float | None = None
    correlation: float | None = None


@dataclass(frozen=True)
class OutputDrift:
    column: str  # "output", or "score" (a binary classifier's positive-class probability)
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class MetricDifference:
    """``challenger - reference`` with its bootstrap CI; ``n`` rows (pairs when paired), ``verdict`` in plain words."""

    metric: str
    reference: float | None
    challenger: float | None
    difference: float | None
    low: float | None
    high: float | None
    n: int
    n_reference: int
    verdict: str  # "better", "worse", "no significant difference", "too little data"


@dataclass(frozen=True)
class Challenger:
    route: str
    model: str
    paired: bool
    rows: int  # rows compared: pairs for a shadow, the challenger's rows for a canary
    agreement: Agreement | None
    drift: tuple[OutputDrift, ...]
    drift_note: str
    metrics: tuple[MetricDifference, ...]
    verdict: str


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` found in a deployment's prediction log: the window (rows, requests, labeled rows), each
    model's traffic and latency (``models``), and each challenger against the reference (``challengers``: agreement,
    output drift, metric differences with a bootstrap CI, and a verdict in words)."""

    deployment: str
    task: str  # "classification", "regression" or "unknown" (no outputs)
    reference: str | None
    rows: int
    requests: int
    labeled: int
    first_ms: int | None
    last_ms: int | None
    models: tuple[ModelSummary, ...]
    challengers: tuple[Challenger, ...]
    confidence: float = CONFIDENCE
    bootstrap: int = BOOTSTRAP
    seed: int = SEED
    min_rows: int = MIN_ROWS

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data, every field included."""
        out: dict[str, Any] = _jsonable(asdict(self))
        return out

    def to_html(self) -> str:
        """The offline HTML report (tables and inline SVG)."""
        from keel.serve.comparison_report import comparison_html

        return comparison_html(self)


def _jsonable(value: Any) -> Any:
    """NaN and infinities become None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ---- the frame ----------------------------------------------------------------------------------------------


@dataclass
class _Side:
    """The rows of one (route, model), as lists aligned by position."""

    route: str
    model: str
    keys: list[tuple[str, int]]
    outputs: list[Any]
    probas: list[Any]
    labels: list[Any]
    latency: dict[str, float]  # request id -> latency of its model call

    def take(self, positions: Sequence[int]) -> _Side:
        return _Side(
            self.route, self.model, [self.keys[i] for i in positions], [self.outputs[i] for i in positions],
            [self.probas[i] for i in positions], [self.labels[i] for i in positions], self.latency,
        )  # fmt: skip

    def valid(self) -> _Side:
        return self.take([i for i, o in enumerate(self.outputs) if not is_missing(o)])

    def labeled(self) -> _Side:
        return self.take([i for i, y in enumerate(self.labels) if not is_missing(y)])


def _sides(frame: Any) -> list[_Side]:
    def col(name: str) -> list[Any]:
        return list(frame[name]) if name in frame.columns else [None] * len(frame)

    routes, models, rids, rows = col("route"), col("model"), col("request_id"), col("row")
    outputs, probas, labels, latency = col("output"), col("proba"), col("label"), col("latency_ms")
    by_key: dict[tuple[str, str], _Side] = {}
    for i in range(len(frame)):
        key = (str(routes[i]), str(models[i]))
        side = by_key.get(key)
        if side is None:
            side = by_key[key] = _Side(key[0], key[1], [], [], [], [], {})
        side.keys.append((str(rids[i]), int(rows[i] or 0)))
        side.outputs.append(outputs[i])
        side.probas.append(probas[i])
        side.labels.append(labels[i])
        if not is_missing(latency[i]):
            side.latency.setdefault(str(rids[i]), float(latency[i]))
    order = {"primary": 0, "canary": 1, "shadow": 2}
    return sorted(by_key.values(), key=lambda s: (order.get(s.route, 3), -len(s.keys), s.model))


def _latency(side: _Side) -> Latency:
    values = np.array(list(side.latency.values()))
    if not len(values):
        return Latency(0, None, None, None)
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return Latency(len(values), p50, p95, p99)


def _distributions(task: str, sides: list[_Side]) -> list[dict[str, Distribution]]:
    """Each model's output shares on bins shared by all models (and, for binary probabilities, its scores')."""
    out: list[dict[str, Distribution]] = [{} for _ in sides]
    if task == "classification":
        counts = [_category_counts([label_key(o) for o in s.outputs if not is_missing(o)]) for s in sides]
        total: dict[str, int] = {}
        for c in counts:
            for k, v in c.items():
                total[k] = total.get(k, 0) + v
        top = sorted(total, key=lambda k: (-total[k], k))[:TOP_CATEGORIES]
        for i, c in enumerate(counts):
            n = max(sum(c.values()), 1)
            out[i]["output"] = Distribution("categorical", tuple(top), tuple(c.get(k, 0) / n for k in top))
        values = [np.array([positive_score(p) for p in s.probas]) for s in sides]
        if any(np.isfinite(v).any() for v in values):
            _numeric_bins(out, "score", [v[np.isfinite(v)] for v in values], edges=np.linspace(0.0, 1.0, 11))
    elif task == "regression":
        values = [np.array([number(o) for o in s.outputs]) for s in sides]
        _numeric_bins(out, "output", [v[np.isfinite(v)] for v in values])
    return out


def _category_counts(keys: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return counts


def _numeric_bins(out: list[dict[str, Distribution]], name: str, values: list[np.ndarray], edges: Any = None) -> None:
    everything = np.concatenate(values) if values else np.array([])
    if not len(everything):
        return
    if edges is None:  # the bulk of all models' outputs; the rare extremes land in the end bins
        lo, hi = np.percentile(everything, [0.5, 99.5])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, HISTOGRAM_BINS + 1)
    labels = tuple(f"{e:.4g}" for e in edges[:-1])
    for i, v in enumerate(values):
        counts, _ = np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)
        out[i][name] = Distribution("numeric", labels, tuple(float(c) / max(len(v), 1) for c in counts))


def _pick_reference(sides: list[_Side], reference: str | None) -> _Side | None:
    primaries = [s for s in sides if s.route == "primary"]
    if reference is None:
        return primaries[0] if primaries else None  # sorted: the primary with most rows first
    for s in primaries or sides:
        if s.model == reference:
            return s
    names = ", ".join(sorted({s.model for s in primaries or sides})) or "none in the window"
    raise InvalidArgument.for_field("reference", reference, f"a primary model of the window ({names})")


def _drift(task: str, ref: _Side, cur: _Side) -> tuple[tuple[OutputDrift, ...], str]:
    """The drift test of keel.data between the two sides' outputs (and binary scores)."""
    if min(len(ref.outputs), len(cur.outputs)) < MIN_ROWS:
        return (), f"too little data for a drift test: {len(cur.outputs)} vs {len(ref.outputs)} rows, need {MIN_ROWS} each"
    try:
        import pandas as pd

        from keel.data.drift_detection import drift
    except ImportError:
        raise MissingExtra("pandas", "data") from None

    def frame(side: _Side) -> Any:
        if task == "classification":
            columns: dict[str, Any] = {"output": [label_key(o) for o in side.outputs]}
            scores = [positive_score(p) for p in side.probas]
            if all(math.isfinite(s) for s in scores):
                columns["score"] = scores
            return pd.DataFrame(columns)
        return pd.DataFrame({"output": [number(o) for o in side.outputs]})

    a, b = frame(ref), frame(cur)
    common = [c for c in a.columns if c in b.columns]
    result = drift(a[common], b[common], columns=common)
    tests = tuple(OutputDrift(c.column, c.test, c.statistic, c.p_value, c.threshold, c.drifted) for c in result.columns)
    return tests, ""


def _agreement(task: str, ref: _Side, cur: _Side) -> Agreement:
    if task == "classification":
        equal = [label_key(a) == label_key(b) for a, b in zip(ref.outputs, cur.outputs, strict=True)]
        return Agreement(len(equal), rate=sum(equal) / len(equal) if equal else None)
    a = np.array([number(v) for v in ref.outputs])
    b = np.array([number(v) for v in cur.outputs])
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if not len(a):
        return Agreement(0)
    diff = np.abs(a - b)
    corr = float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else None
    return Agreement(len(a), mean_abs_diff=float(diff.mean()), max_abs_diff=float(diff.max()), correlation=corr)


def _metric_differences(task: str, ref: _Side, cur: _Side, *, paired: bool, positive: str | None) -> tuple[MetricDifference, ...]:
    ref_l, cur_l = ref.labeled(), cur.labeled()
    if not len(ref_l.keys) and not len(cur_l.keys):
        return ()
    f_ref = scorers(task, ref_l.labels, ref_l.outputs, ref_l.probas, positive)
    f_cur = scorers(task, cur_l.labels, cur_l.outputs, cur_l.probas, positive)
    n_c, n_r = len(cur_l.keys), len(ref_l.keys)
    groups_c, groups_r = _request_groups(cur_l), _request_groups(ref_l)
    requests = min(len(set(groups_c.tolist())), len(set(groups_r.tolist())))  # the unit of evidence: requests
    metrics = [m for m in f_cur if m in f_ref]
    estimates = {m: (f_ref[m](np.ones(n_r)) if n_r else math.nan, f_cur[m](np.ones(n_c)) if n_c else math.nan) for m in metrics}
    judged = [m for m in metrics if requests >= MIN_ROWS and all(math.isfinite(v) for v in estimates[m])]
    cis = bootstrap_cis({m: f_cur[m] for m in judged}, {m: f_ref[m] for m in judged}, groups_c, groups_r, paired=paired)
    out = []
    for metric in metrics:
        r, c = estimates[metric]
        low, high = cis.get(metric, (math.nan, math.nan))
        if not math.isfinite(low):
            out.append(MetricDifference(metric, _finite(r), _finite(c), None, None, None, n_c, n_r, "too little data"))
            continue
        out.append(MetricDifference(metric, r, c, c - r, low, high, n_c, n_r, verdict_of(metric, low, high)))
    return tuple(out)


def _request_groups(side: _Side) -> np.ndarray:
    """Each row's request, as an index (rows of one request are resampled together)."""
    if not side.keys:
        return np.zeros(0, dtype=np.int64)
    return np.unique([rid for rid, _ in side.keys], return_inverse=True)[1].astype(np.int64)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _pairs(ref: _Side, cur: _Side) -> tuple[_Side, _Side]:
    """The rows both models answered, in the same order on both sides."""
    where = {k: i for i, k in enumerate(ref.keys)}
    mine = [i for i, k in enumerate(cur.keys) if k in where]
    return ref.take([where[cur.keys[i]] for i in mine]), cur.take(mine)


def _challenger(task: str, ref: _Side, cur: _Side, positive: str | None) -> Challenger:
    paired = cur.route == "shadow"
    a, b = _pairs(ref.valid(), cur.valid()) if paired else (ref.valid(), cur.valid())
    if paired:  # a shadow's row is judged by the label of its request, whichever side recorded it
        labels = [x if not is_missing(x) else y for x, y in zip(a.labels, b.labels, strict=True)]
        a.labels, b.labels = labels, list(labels)
    agreement = _agreement(task, a, b) if paired else None
    drift, note = _drift(task, a, b)
    metrics = _metric_differences(task, a, b, paired=paired, positive=positive)
    return Challenger(
        cur.route, cur.model, paired, len(b.keys), agreement, drift, note, metrics, _verdict(ref.model, metrics, paired)
    )


def _verdict(reference: str, metrics: tuple[MetricDifference, ...], paired: bool) -> str:
    if not metrics:
        return "no labels yet: record them with keel.serve.log_labels to compare metrics"
    head = metrics[0]  # accuracy, or MAE for regression
    if head.verdict == "too little data":
        return f"too little labeled data to judge: n={min(head.n, head.n_reference)}, need {MIN_ROWS}"
    rows = f"n={head.n} paired rows" if paired else f"n={head.n} vs {head.n_reference} rows"
    numbers = f"{head.difference:+.3f}, CI [{head.low:.3f}, {head.high:.3f}], {rows}"
    if head.verdict == "no significant difference":
        return f"no significant difference from {reference} on {head.metric} at {CONFIDENCE:.0%} ({numbers})"
    return f"challenger {head.verdict} than {reference} on {head.metric} at {CONFIDENCE:.0%} ({numbers})"


def compare_frame(frame: Any, *, reference: str | None = None, deployment: str | None = None) -> Comparison:
    """Compare the models of a prediction-log frame (``read_predictions``' columns and ``label``).

    ``reference``: the primary model to compare with (default: the primary with most rows in the frame).
    """
    sides = _sides(frame)
    name = deployment or (str(frame["deployment"].iloc[0]) if len(frame) and "deployment" in frame.columns else "")
    all_outputs = [o for s in sides for o in s.outputs]
    has_proba = any(not is_missing(p) for s in sides for p in s.probas)
    task = task_of(all_outputs, has_proba)
    ref = _pick_reference(sides, reference)
    positive = None
    if task == "classification" and has_proba:
        positive = positive_class(all_outputs, [p for s in sides for p in s.probas], [y for s in sides for y in s.labels])
    requests = len({k[0] for s in sides for k in s.keys})
    distributions = _distributions(task, sides)
    models = []
    for side, dist in zip(sides, distributions, strict=True):
        labeled = side.valid().labeled()
        scores = scorers(task, labeled.labels, labeled.outputs, labeled.probas, positive) if labeled.keys else {}
        metrics = {m: v for m, f in scores.items() if math.isfinite(v := f(np.ones(len(labeled.keys))))}
        seen = len({k[0] for k in side.keys})
        models.append(
            ModelSummary(side.route, side.model, len(side.keys), seen, seen / requests if requests else 0.0, _latency(side),
                         len(labeled.keys), metrics, dist)
        )  # fmt: skip
    challengers = tuple(_challenger(task, ref, s, positive) for s in sides if ref is not None and s is not ref)
    times = [int(t) for t in frame["time"]] if "time" in frame.columns and len(frame) else []
    labeled_rows = len({k for s in sides for k, y in zip(s.keys, s.labels, strict=True) if not is_missing(y)})
    return Comparison(
        name, task, ref.model if ref else None, len(frame), requests, labeled_rows, min(times, default=None),
        max(times, default=None), tuple(models), challengers,
    )  # fmt: skip


def compare(
    deployment: str,
    since: Any = None,
    until: Any = None,
    *,
    reference: str | None = None,
    ctx: Context | None = None,
) -> Comparison:
    """Compare ``deployment``'s models on its prediction log between ``since`` and ``until``: whatever
    ``read_predictions`` takes (ms since the epoch, a datetime, an ISO time, or a duration ago such as ``"1h"``).

    Raises ``NotFound`` for an unknown deployment. An empty window gives a Comparison with no models (``rows == 0``).
    """
    from keel.context import resolve

    context = resolve(ctx)
    context.store.deployments.get(deployment)  # NotFound before reading any file
    from keel.serve.predictions import read_predictions

    frame = read_predictions(deployment, since, until, ctx=context, labels=True)
    return compare_frame(frame, reference=reference, deployment=deployment)
