"""Fairness assessment of a registered binary classifier: per-group metrics (fairlearn's ``MetricFrame``), disparities,
recorded with the model version and on a run, so promotion gates and ``keel gate`` can read them.

>>> a = keel.fairness.assess("models:/credit/3", "applicants@2", sensitive=["sex", "race"], y_true="approved")  # doctest: +SKIP
>>> a.metrics["demographic_parity_difference"], a.worst_group                                             # doctest: +SKIP
>>> a.frame("sex")                      # one row per group of one feature; a.frame("sex", "race"): the intersection
>>> keel gate models:/credit/3 --rule 'fairness.demographic_parity_difference <= 0.1'                   # doctest: +SKIP

The headline numbers (``metrics`` without a dot) are over the intersection of every sensitive feature (the one feature
when there is one): what fairlearn's ``demographic_parity_difference(..., sensitive_features=df[[...]])`` computes. The
intersection's gaps are never smaller than a single feature's (a feature's group rate is an average of its
intersection groups' rates), so a gate on them is the strictest. With several features, each feature's own disparities
are in ``metrics`` too, as ``<feature>.<name>`` (when the column name fits a metric name).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument
from keel.core.models import Assessment
from keel.core.numbers import short
from keel.fairness.metrics import DIRECTION, RATES, GroupSet, finite, group_sets

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["EXPERIMENT", "KIND", "FairnessAssessment", "assess", "flat_metrics", "measure"]

KIND = "fairness"  # the assessment's kind: gates read its metrics as fairness.<name>
EXPERIMENT = "fairness"  # where an assessment made outside any run logs its own run
MISSING = "(missing)"  # the group of rows whose sensitive value is missing
_METRIC_NAME = re.compile(r"[A-Za-z0-9_\-./:]{1,100}")
_PER_FEATURE = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                "equalized_odds_ratio", "accuracy_min", "accuracy_difference")  # fmt: skip


def flat_metrics(sets: Sequence[GroupSet]) -> dict[str, float]:
    """The numbers recorded and gated on (finite ones only): over the last set (the intersection, or the only feature)
    the four disparities, and per metric its overall value and its min, max, difference and ratio over the groups,
    the number of groups and the smallest group's size; with several features, ``<feature>.<name>`` per feature."""
    summary = sets[-1]
    out: dict[str, float | None] = dict(summary.disparities())
    for m in RATES:
        if m not in summary.overall:
            continue
        column = [v for v in (finite(x) for x in summary.frame[m]) if v is not None]
        out[f"{m}_overall"] = summary.overall[m]
        out[f"{m}_min"] = min(column) if column else None
        out[f"{m}_max"] = max(column) if column else None
        out[f"{m}_difference"] = summary.difference[m]
        out[f"{m}_ratio"] = summary.ratio[m]
    out["groups"] = float(len(summary.frame))
    out["group_size_min"] = float(summary.frame["count"].min())
    if len(sets) > 1:
        for s in sets[:-1]:
            if not _METRIC_NAME.fullmatch(s.key):
                continue  # a column name no rule could name: its figures stay in the details
            mine = flat_metrics([s])
            out.update({f"{s.key}.{name}": mine.get(name) for name in _PER_FEATURE})
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


@dataclass
class FairnessAssessment:
    """What ``assess`` (or ``measure``) found: a ``GroupSet`` per sensitive feature and, with several, one for their
    intersection (last); ``metrics``, the flat numbers recorded; where it was recorded (``run_id``, ``report_sha256``,
    ``recorded``: the stored ``Assessment``)."""

    sets: list[GroupSet] = field(repr=False)
    rows: int
    pos_label: Any
    target: str | None = None
    model: str | None = None  # the version's URI, models:/name/N
    data: str | None = None  # the dataset version's exact reference, when the data was one
    run_id: str | None = None
    report_sha256: str | None = None
    recorded: Assessment | None = field(default=None, repr=False)
    metrics: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = flat_metrics(self.sets)

    @property
    def sensitive(self) -> list[str]:
        """The sensitive features assessed, in the order given."""
        return list(self.sets[-1].features)

    def frame(self, *features: str) -> pd.DataFrame:
        """The per-group table of one feature (``frame("sex")``) or of the intersection (``frame("sex", "race")``,
        or ``frame()``): a row per group, a column per metric (AUC when the model scores), and ``count``."""
        wanted = tuple(features) or self.sets[-1].features
        for s in self.sets:
            if s.features == wanted or (len(wanted) > 1 and set(s.features) == set(wanted)):
                return s.frame
        keys = "; ".join(", ".join(s.features) for s in self.sets)
        raise InvalidArgument.for_field("features", ", ".join(wanted), f"one of the sets assessed: {keys}")

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """Every set's table by its key (``sex``, ``race``, ``sex & race``)."""
        return {s.key: s.frame for s in self.sets}

    @property
    def worst_group(self) -> dict[str, Any] | None:
        """The group with the lowest accuracy in the intersection (or the only feature): its values, size and metrics."""
        summary = self.sets[-1]
        found = summary.extreme("accuracy", "min")
        if found is None:
            return None
        group = found[0]
        for entry in summary.to_dict()["groups"]:
            if entry["group"] == group:
                return dict(entry)
        return None

    def extremes(self) -> dict[str, dict[str, Any]]:
        """Per metric of the intersection, the groups at its low and high end, and which end is the worse one."""
        summary = self.sets[-1]
        out: dict[str, dict[str, Any]] = {}
        for m in RATES:
            low, high = summary.extreme(m, "min"), summary.extreme(m, "max")
            if low is None or high is None:
                continue
            out[m] = {"min": {"group": low[0], "value": low[1]}, "max": {"group": high[0], "value": high[1]},
                      "worse": DIRECTION[m]}  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what was assessed, the flat metrics, each set's groups, the worst group and each metric's
        extreme groups. These are the recorded assessment's ``details`` (with ``metrics``)."""
        return {
            "model": self.model,
            "data": self.data,
            "target": self.target,
            "pos_label": None if self.pos_label is None else str(self.pos_label),
            "rows": self.rows,
            "sensitive": self.sensitive,
            "metrics": dict(self.metrics),
            "sets": [s.to_dict() for s in self.sets],
            "worst_group": self.worst_group,
            "extremes": self.extremes(),
            "run_id": self.run_id,
            "report_sha256": self.report_sha256,
        }

    def html(self, title: str | None = None) -> str:
        """The offline HTML report (``keel.fairness.report.fairness_html``)."""
        from keel.fairness.report import fairness_html

        return fairness_html(self.to_dict(), title)


# input ------------------------------------------------------------------------------------------------------------------


def _labels01(y: np.ndarray, pos_label: Any, what: str) -> tuple[np.ndarray, Any, list[Any]]:
    """``y`` as 0/1 (1: ``pos_label``), the positive label and the labels found; bad labels named."""
    import numpy as np
    import pandas as pd

    if y.ndim != 1:
        raise InvalidArgument.for_field(what, f"an array of shape {list(y.shape)}", "one label per row")
    missing = int(pd.isna(y).sum()) if y.dtype == object or y.dtype.kind == "f" else 0
    if missing:
        raise InvalidArgument.for_field(what, f"{missing:,} missing labels", "a label on every row (drop or fill them)")
    labels = np.unique(y).tolist()
    if len(labels) > 2:
        shown = ", ".join(short(v) if isinstance(v, float) else repr(v) for v in labels[:5])
        raise InvalidArgument.for_field(what, f"{len(labels):,} distinct values ({shown}, ...)", "two labels (a binary target)")
    if pos_label is None:
        if set(labels) <= {0, 1} or set(labels) <= {-1, 1}:
            pos_label = 1
        else:
            raise InvalidArgument.for_field("pos_label", None, f"the positive label, one of {', '.join(map(repr, labels))}")
    elif pos_label not in labels and isinstance(pos_label, str) and pos_label in {str(v) for v in labels}:
        pos_label = next(v for v in labels if str(v) == pos_label)  # "1" typed on a command line, for the label 1
    if len(labels) == 2 and pos_label not in labels:
        raise InvalidArgument.for_field("pos_label", pos_label, f"one of the target's labels: {', '.join(map(repr, labels))}")
    return (y == pos_label).astype(np.int8), pos_label, labels


def _predictions01(pred: Any, labels: list[Any], pos_label: Any) -> np.ndarray:
    import numpy as np

    arr = np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidArgument(
            f"the model's predictions have shape {list(arr.shape)}; fairness assessment needs one label per row"
        )
    known = {*labels, pos_label}
    unknown = [v for v in np.unique(arr).tolist() if v not in known]
    if unknown:
        raise InvalidArgument(
            f"the model predicts {', '.join(map(repr, unknown[:5]))}, which the target never holds "
            f"({', '.join(map(repr, sorted(known, key=str)))}); is the target the model's label?"
        )
    positive: np.ndarray = np.asarray(arr == pos_label, dtype=np.int8)
    return positive


def _sensitive_frame(sensitive: Any, n: int) -> pd.DataFrame:
    """The sensitive features as a DataFrame with text column names; missing values form a group of their own."""
    import pandas as pd

    frame = sensitive.to_frame() if isinstance(sensitive, pd.Series) else pd.DataFrame(sensitive)
    if len(frame) != n:
        raise InvalidArgument.for_field("sensitive_features", f"{len(frame):,} rows", f"one value per row ({n:,} rows)")
    if frame.shape[1] == 0:
        raise InvalidArgument.for_field("sensitive_features", "no column", "one sensitive feature at least")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        raise InvalidArgument.for_field("sensitive", list(frame.columns), "distinct column names")
    for name in frame.columns:
        if frame[name].isna().any():
            frame[name] = frame[name].astype(object).where(frame[name].notna(), MISSING)
    return frame


def _scores(proba: Any, classes: Any, pos_label: Any) -> np.ndarray | None:
    import numpy as np

    arr = np.asarray(proba, dtype=float)
    if arr.ndim == 1:
        return arr
    if arr.ndim != 2 or arr.shape[1] != 2:
        return None
    column = 1
    if classes is not None:
        found = [i for i, c in enumerate(list(classes)) if c == pos_label]
        column = found[0] if found else 1
    scores: np.ndarray = arr[:, column]
    return scores


def measure(
    y_true: Any, y_pred: Any, sensitive_features: Any, *, y_score: Any = None, pos_label: Any = None
) -> FairnessAssessment:
    """The assessment of predictions already made (no model, nothing stored): ``y_true`` and ``y_pred`` labels,
    ``sensitive_features`` a DataFrame (or Series) with one column per feature, ``y_score`` the positive class's
    scores for AUC. ``pos_label`` defaults to 1 for 0/1 (or -1/1, or False/True) labels."""
    import numpy as np

    y, pos_label, labels = _labels01(np.asarray(y_true), pos_label, "y_true")
    pred = _predictions01(y_pred, labels, pos_label)
    if len(pred) != len(y):
        raise InvalidArgument.for_field("y_pred", f"{len(pred):,} predictions", f"one per label ({len(y):,})")
    score = None
    if y_score is not None:
        score = np.asarray(y_score, dtype=float)
        if score.shape != y.shape:
            raise InvalidArgument.for_field("y_score", f"shape {list(score.shape)}", f"one score per label ({len(y):,})")
    if len(y) == 0:
        raise InvalidArgument.for_field("y_true", "no rows", "at least one row")
    sf = _sensitive_frame(sensitive_features, len(y))
    return FairnessAssessment(group_sets(y, pred, sf, score), rows=len(y), pos_label=pos_label)


# assess: a registered model on data --------------------------------------------------------------------------------------


def _names(sensitive: Any) -> list[str]:
    names = [sensitive] if isinstance(sensitive, str) else list(sensitive) if isinstance(sensitive, list | tuple) else []
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidArgument.for_field("sensitive", sensitive, "a column name or a list of column names of the data")
    if len(set(names)) != len(names):
        raise InvalidArgument.for_field("sensitive", sensitive, "distinct column names")
    return names


def _data(data: Any, ctx: Context) -> tuple[pd.DataFrame, Any]:
    """``data`` as pandas, and the dataset version when it names one (``"name@3"``, a ``DatasetVersion``)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True), None
    if isinstance(data, str) or hasattr(data, "ref"):
        import keel.data

        version = keel.data.resolve(data, ctx)
        return keel.data.get(version, run=False, ctx=ctx), version
    from keel.registry.signature import to_frame_or_array

    try:
        converted = to_frame_or_array(data)
    except InvalidArgument:
        converted = None
    if isinstance(converted, pd.DataFrame):
        return converted.reset_index(drop=True), None
    raise InvalidArgument.for_field("data", type(data).__name__, "a DataFrame (pandas, polars, Arrow) or a dataset reference")


def _columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    columns = {str(c) for c in frame.columns}
    for name in names:
        if name not in columns:
            shown = ", ".join(sorted(columns)[:10]) + (", ..." if len(columns) > 10 else "")
            raise InvalidArgument.for_field(what, name, f"a column of the data ({shown})")


def _predict(model: Any, frame: pd.DataFrame, pos_label: Any) -> tuple[Any, np.ndarray | None]:
    """The model's labels for ``frame`` and, when it has ``predict_proba``, the positive class's scores."""
    try:
        pred = model.predict(frame)
        proba = model.predict_proba(frame) if hasattr(model.model, "predict_proba") else None
    except InvalidArgument:
        raise
    except Exception as exc:  # noqa: BLE001 - a model's own error, said in keel's terms
        raise InvalidArgument(
            f"{model.version.uri} could not predict on the data ({type(exc).__name__}: {exc}); "
            "pass features=[...] with the columns it was trained on"
        ) from None
    return pred, None if proba is None else _scores(proba, getattr(model.model, "classes_", None), pos_label)


def assess(
    model_uri: str,
    data: Any,
    sensitive: str | Sequence[str],
    y_true: Any = None,
    *,
    target: str | None = None,
    pos_label: Any = None,
    features: Sequence[str] | None = None,
    run: Any = None,
    record: bool = True,
    name: str | None = None,
    trust_pickle: bool | None = None,
    ctx: Context | None = None,
) -> FairnessAssessment:
    """Assess the registered binary classifier ``model_uri`` on ``data`` (a DataFrame or a dataset reference such
    as ``"applicants@2"``) for the ``sensitive`` column(s): per-group metrics, disparities, the worst group.

    The labels are the ``y_true`` column (or ``target=``), or an array; the model sees ``features`` (default: every
    other column, which its signature narrows to its own). With ``record`` (the default), the flat metrics and the
    details are stored with the version as a ``fairness`` assessment with its HTML report (a blob), and logged as
    ``fairness.<name>`` on ``run``: the active run by default, else a new run (``name``) in the ``fairness``
    experiment, tagged with the model and with the dataset as its input; ``run=False`` logs on none."""
    import numpy as np

    import keel.registry

    ctx = _ctx(ctx)
    names = _names(sensitive)
    loaded = keel.registry.load(model_uri, ctx, trust_pickle=trust_pickle)
    frame, dataset = _data(data, ctx)
    _columns(frame, names, "sensitive")
    column = target if target is not None else y_true if isinstance(y_true, str) else None
    if column is not None:
        _columns(frame, [column], "target")
        if column in names:
            raise InvalidArgument.for_field("target", column, "a column that is not also a sensitive feature")
        labels: Any = frame[column].to_numpy()
    elif y_true is None:
        raise InvalidArgument("the labels are missing: pass y_true (a column name or an array) or target=")
    else:
        labels = y_true
    y, pos_label, found = _labels01(np.asarray(labels), pos_label, "target")
    if len(y) != len(frame):
        raise InvalidArgument.for_field("y_true", f"{len(y):,} labels", f"one label per row of the data ({len(frame):,})")
    if features is not None:
        _columns(frame, list(features), "features")
        inputs = frame[list(features)]
    else:
        inputs = frame.drop(columns=[column]) if column is not None else frame
    pred, score = _predict(loaded, inputs, pos_label)
    sf = _sensitive_frame(frame[names], len(frame))
    result = FairnessAssessment(
        group_sets(y, _predictions01(pred, found, pos_label), sf, score), rows=len(frame), pos_label=pos_label,
        target=column, model=loaded.version.uri, data=None if dataset is None else dataset.ref,
    )  # fmt: skip
    if record:
        _record(result, loaded.version, dataset, run, name, ctx)
    return result


def _record(result: FairnessAssessment, version: Any, dataset: Any, run: Any, name: str | None, ctx: Context) -> None:
    """Log the metrics and the report on a run, then store the assessment with the version (one write: the run exists
    first, so the assessment can name it)."""
    client, own_client = _client(ctx)
    own_run = False
    try:
        run_id: str | None
        if run is False:
            run_id = None
        elif run is None:
            run_id = ctx.run_id
            if run_id is None:
                tags = {"model": version.uri, **({"dataset": dataset.ref} if dataset is not None else {})}
                params = {"sensitive": ", ".join(result.sensitive), "target": result.target or "", "pos_label": result.pos_label}
                run_id = client.create_run(EXPERIMENT, name, tags=tags, params=params, capture_code=False).id
                own_run = True
        else:
            run_id = run if isinstance(run, str) else str(run.id)
        result.run_id = run_id
        report = result.html(f"fairness of {version.uri}").encode()
        result.report_sha256 = ctx.artifacts.put_bytes(report).sha256
        if run_id is not None:
            if dataset is not None:
                ctx.store.datasets.link_run(run_id, dataset.id, "input")
            client.log_metrics(run_id, {f"{KIND}.{k}": v for k, v in result.metrics.items()})
            client.log_bytes(run_id, report, "fairness.html", "text/html")
            client.flush()
        details = result.to_dict()
        del details["metrics"]  # stored beside them
        result.recorded = ctx.store.models.add_assessment(Assessment(
            model=version.name, version=version.version, kind=KIND, metrics=result.metrics, details=details,
            artifact_sha256=result.report_sha256, run_id=run_id,
        ))  # fmt: skip
    except BaseException:
        if own_run and result.run_id is not None:
            client.end_run(result.run_id, "failed")
        raise
    else:
        if own_run and result.run_id is not None:
            client.end_run(result.run_id)
    finally:
        if own_client:
            client.writer.close()  # its background writer only: the store is the caller's context's


def _client(ctx: Context) -> tuple[Any, bool]:
    """The process-wide tracking client when ``ctx`` is the current context (it buffers the active run's metrics),
    else one over ``ctx`` (whose writer is ours to close, never the context's store)."""
    from keel.context import current
    from keel.tracking.client import Client
    from keel.tracking.fluent import get_client

    if ctx is current():
        return get_client(), False
    return Client(ctx), True
