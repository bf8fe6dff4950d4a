"""One monitoring window of a deployment: its rows read once from the prediction log into a mergeable profile,
then drift against the training data, data quality, health and performance (realised on the labelled rows,
estimated from the probabilities for all).

>>> result = evaluate_window("churn", since="1h", reference="churn-train@3")   # doctest: +SKIP
>>> result.values()["drift.share"], result.values()["performance.estimated.accuracy"]   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.context import Context, resolve
from keel.core.errors import InvalidArgument
from keel.data.drift_detection import DriftResult, drift
from keel.monitor.estimation import Estimator, realised_metrics
from keel.monitor.profiles import CategoricalSketch, NumericSketch, Profile
from keel.serve.parquet_sink import INPUT_PREFIX
from keel.serve.predictions import labels_for, read_log_file, window_ms

__all__ = ["WindowResult", "evaluate_table", "evaluate_window", "read_window", "reference_profile"]

log = logging.getLogger(__name__)
OUTPUT = "output"
PREDICTIONS = (OUTPUT, "proba1")  # what the model answered: tested for drift against a baseline window, not the data
_LOG_FIELDS = ("time", "request_id", "row", "latency_ms", "status")  # read_window's columns that are not features


@dataclass
class WindowResult:
    """What a monitor keeps of one window: its profile (features and ``output``) and the values computed on it."""

    deployment: str
    start_ms: int | None
    end_ms: int | None
    profile: Profile
    drift: DriftResult | None
    quality: dict[str, dict[str, float]]
    health: dict[str, float | None]
    performance: dict[str, Any] = field(default_factory=dict)
    prediction_drift: DriftResult | None = None  # the predictions against a baseline window's

    def values(self) -> dict[str, float]:
        """Every monitored number under one flat name (what alert rules and gauges refer to)."""
        out: dict[str, float] = {}
        if self.drift is not None:
            out["drift.share"] = self.drift.share_drifted
            out["drift.columns"] = float(len(self.drift.drifted))
            for tested in self.drift.columns:
                out[f"drift.{tested.column}.score"] = tested.statistic
        if self.prediction_drift is not None:
            for tested in self.prediction_drift.columns:
                out[f"prediction_drift.{tested.column}.score"] = tested.statistic
                out[f"prediction_drift.{tested.column}.drifted"] = float(tested.drifted)
        for column, checks in self.quality.items():
            for name, value in checks.items():
                out[f"quality.{column}.{name}"] = value
        out.update({f"health.{k}": v for k, v in self.health.items() if v is not None})
        for kind in ("realised", "estimated"):
            for name, value in (self.performance.get(kind) or {}).items():
                if value is not None:
                    out[f"performance.{kind}.{name}"] = value
        return out


def read_window(deployment: str, since: Any = None, until: Any = None, *, ctx: Context | None = None) -> Any:
    """The served rows (primary and canaries, not shadows) of the window as one Arrow table, read once: the log's
    plain columns, one column per input (``inputs.<name>`` files) and ``proba1`` (the positive class's
    probability, when the model logged probabilities for two classes)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ctx = resolve(ctx)
    since_ms, until_ms = window_ms(since, "since"), window_ms(until, "until")
    tables = []
    for file in ctx.store.predictions.log_files(deployment, since_ms=since_ms, until_ms=until_ms):
        table = read_log_file(ctx, deployment, file.sha256)
        if table is None:
            continue
        keep = pc.equal(table["served"], True)
        if "deployment" in table.column_names:
            keep = pc.and_(keep, pc.equal(table["deployment"], deployment))
        if since_ms is not None:
            keep = pc.and_(keep, pc.greater_equal(table["time"], since_ms))
        if until_ms is not None:
            keep = pc.and_(keep, pc.less_equal(table["time"], until_ms))
        tables.append(_features(table.filter(keep)))
    if not tables:
        return pa.table({"time": pa.array([], pa.int64())})
    return pa.concat_tables(tables, promote_options="permissive")


def _features(table: Any) -> Any:
    """A log file's rows with the inputs as columns (typed ``inputs.<name>``, or JSON objects decoded) and the
    positive class's probability."""
    import orjson
    import pyarrow as pa

    names = [n for n in table.column_names if n.startswith(INPUT_PREFIX)]
    columns = {n.removeprefix(INPUT_PREFIX): table[n] for n in names}
    if not names and "inputs" in table.column_names and pa.types.is_string(table.schema.field("inputs").type):
        decoded = [orjson.loads(v) if v is not None else {} for v in table["inputs"].to_pylist()]
        records = [v if isinstance(v, dict) else {} for v in decoded]
        columns = {n: pa.array([r.get(n) for r in records]) for n in dict.fromkeys(k for r in records for k in r)}
    from keel.serve.predictions import with_status

    status = with_status(table)["status"]
    out = {"time": table["time"], "request_id": table["request_id"], "row": table["row"], "latency_ms": table["latency_ms"],
           "status": status, OUTPUT: _outputs(table[OUTPUT], table.schema.field(OUTPUT))}  # fmt: skip
    for name, column in columns.items():  # an input named like a log field keeps its prefix rather than replace it
        out[INPUT_PREFIX + name if name in (*_LOG_FIELDS, *PREDICTIONS) else name] = column
    proba1 = _positive_class(table["proba"])
    if proba1 is not None:
        out["proba1"] = proba1
    return pa.table(out)


def _positive_class(proba: Any) -> Any:
    """Each row's probability of the second class where the row has two (null elsewhere: a failed answer, a
    multi-class model), or None when no row has two."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_list(proba.type) or not len(proba):
        return None
    flat = proba.combine_chunks()
    two = pc.fill_null(pc.list_value_length(flat), 0).to_numpy(zero_copy_only=False) == 2
    if not two.any():
        return None
    offsets = flat.offsets.to_numpy(zero_copy_only=False)[:-1]
    values = flat.values.to_numpy(zero_copy_only=False).astype(np.float64)
    second = np.zeros(len(flat))
    second[two] = values[offsets[two] + 1]
    return pa.array(second, mask=~two)


def _outputs(column: Any, field_: Any) -> Any:
    import orjson
    import pyarrow as pa

    if not pa.types.is_string(column.type) or (field_.metadata or {}).get(b"keel.encoding") == b"text":
        return column
    values = [orjson.loads(v) if v is not None else None for v in column.to_pylist()]
    return pa.array([v if isinstance(v, int | float | str | bool) or v is None else str(v) for v in values])


def evaluate_window(
    deployment: str,
    since: Any = None,
    until: Any = None,
    *,
    reference: Any = None,
    estimator: Estimator | None = None,
    labels: bool = True,
    profile: bool = True,
    baseline: Profile | None = None,
    ctx: Context | None = None,
) -> WindowResult:
    """Read the window once and evaluate it (``evaluate_table``). ``reference``: the training data (a dataset
    reference such as ``"churn-train@3"``, a frame, or a profile); by default the first training dataset of the
    deployment's primary model version, when it has one. ``profile=False``: performance only (late labels), from
    the log's outputs and probabilities, without profiling the inputs."""
    ctx = resolve(ctx)
    table = read_window(deployment, since, until, ctx=ctx)
    if not profile:
        table = table.select([n for n in table.column_names if n in (OUTPUT, "proba1", *_LOG_FIELDS)])
        reference = None
    elif reference is None:
        reference = _training_data(deployment, ctx)
    suite = reference_suite(reference, ctx) if profile else None
    reference = _reference_profile(reference, ctx)
    found: list[Any] = []
    if labels and table.num_rows:
        import pandas as pd
        import pyarrow.compute as pc

        frame = pd.DataFrame({"request_id": table["request_id"].to_pylist(), "row": table["row"].to_pylist()})
        found = labels_for(ctx, deployment, frame, int(pc.min(table["time"]).as_py()))
    result = evaluate_table(table, reference=reference, estimator=estimator, labels=found or None, deployment=deployment,
                            baseline=baseline, suite=suite)  # fmt: skip
    result.start_ms, result.end_ms = window_ms(since, "since"), window_ms(until, "until")
    return result


def reference_profile(deployment: str, reference: Any, ctx: Context | None = None) -> dict[str, Any] | None:
    """The drift profile a monitor compares ``deployment``'s windows with: ``reference``'s, or the primary model
    version's first training dataset's (None when there is neither)."""
    ctx = resolve(ctx)
    return _reference_profile(reference if reference is not None else _training_data(deployment, ctx), ctx)


def _training_data(deployment: str, ctx: Context) -> Any:
    from keel.core.errors import NotFound
    from keel.registry import resolve as resolve_model

    primary = ctx.store.deployments.get(deployment).primary
    try:
        datasets = resolve_model(primary, ctx=ctx).datasets
    except NotFound:  # the primary's model is gone from the registry: no reference, the rest still computed
        return None
    return datasets[0] if datasets else None


def evaluate_table(
    table: Any,
    *,
    reference: Any = None,
    estimator: Estimator | None = None,
    labels: list[Any] | None = None,
    deployment: str = "",
    baseline: Profile | None = None,
    suite: Any = None,
) -> WindowResult:
    """Profile the window's table (``read_window``'s columns) in one pass, then drift against ``reference``,
    quality against the reference's profile, health from latencies and times, performance from ``labels`` (one
    per row, None where none arrived) and estimated from ``proba1``. ``baseline``: an earlier window's profile
    (the monitor's first), against which the predictions (``output``, ``proba1``) are tested for drift. ``suite``:
    the training data's ``keel.data.Suite``, applied to the window's inputs (its checks on columns the window
    has): ``quality.<column>.suite_<check>`` is each check's failing share, ``quality.suite.failed_checks`` the
    number of error-level checks that failed."""
    health = _health(table)
    answered = _answered(table)  # failed answers count in the error rate; they have no outputs to profile or score
    if answered is not None:
        table = table.filter(answered)
        if labels is not None:
            labels = [label for label, keep in zip(labels, answered.to_pylist(), strict=True) if keep]
    features = [n for n in table.column_names if n not in _LOG_FIELDS]
    profile = Profile.from_table(table.select(features)) if table.num_rows and features else Profile()
    checked = _suite_checks(suite, table) if suite is not None and table.num_rows else {}
    ref = _reference_profile(reference)
    drifted: DriftResult | None = None
    quality: dict[str, dict[str, float]] = {}
    if ref is not None:
        shared = [n for n in ref["columns"] if n in profile.columns and n not in PREDICTIONS]
        if shared and profile.rows:
            drifted = drift(ref, profile.to_drift_profile(), columns=shared)
        quality = {n: _quality(profile.columns[n], ref["columns"][n], profile.rows) for n in shared}
    for column, checks in checked.items():
        quality.setdefault(column, {}).update(checks)
    result = WindowResult(deployment, None, None, profile, drifted, quality, health)
    result.performance = _performance(table, labels, estimator)
    result.prediction_drift = _prediction_drift(baseline, profile)
    return result


def _prediction_drift(baseline: Profile | None, profile: Profile) -> DriftResult | None:
    if baseline is None or not baseline.rows or not profile.rows:
        return None
    base, current = baseline.to_drift_profile(), profile.to_drift_profile()
    columns = [n for n in PREDICTIONS if n in base["columns"] and n in current["columns"]]
    kinds = {n: (base["columns"][n]["kind"], current["columns"][n]["kind"]) for n in columns}
    columns = [n for n in columns if kinds[n][0] == kinds[n][1]]
    return drift(base, current, columns=columns, correction="none") if columns else None


def _reference_profile(reference: Any, ctx: Context | None = None) -> dict[str, Any] | None:
    if reference is None:
        return None
    if isinstance(reference, Profile):
        return reference.to_drift_profile()
    if isinstance(reference, dict) and "columns" in reference:
        return reference
    from keel.data import frames
    from keel.data.profiling import compute_profile

    if isinstance(reference, str) and not reference.endswith((".csv", ".parquet", ".tsv")):
        from keel.data.dataset_versions import profile

        return profile(reference, ctx=ctx)
    return compute_profile(frames.to_arrow(reference, what="reference"))


def _quality(sketch: NumericSketch | CategoricalSketch, ref: dict[str, Any], rows: int) -> dict[str, float]:
    """Missing values against the reference's share, values outside the reference's range, categories it never had."""
    out = {"missing_share": sketch.missing / rows if rows else 0.0}
    out["missing_share_change"] = out["missing_share"] - float(ref.get("missing_share") or 0.0)
    if isinstance(sketch, NumericSketch) and sketch.count and "min" in ref:
        lo, hi = float(ref["min"]), float(ref["max"])
        below = 0.0 if sketch.min >= lo else float(sketch.kll.get_rank(lo, False))
        above = 0.0 if sketch.max <= hi else 1.0 - float(sketch.kll.get_rank(hi, True))
        out["out_of_range_share"] = below + above
        grid = ref.get("grid")
        if grid:  # Tukey's fences from the reference's quartiles: the share of values the training data calls outliers
            q1, q3 = float(grid[250]), float(grid[750])
            low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
            out["outlier_share"] = float(sketch.kll.get_rank(low, False)) + 1.0 - float(sketch.kll.get_rank(high, True))
    elif isinstance(sketch, CategoricalSketch) and sketch.count and "frequencies" in ref:
        known = set(ref["frequencies"])
        unseen = sum(n for value, n in sketch.frequencies().items() if value not in known and value != "__other__")
        out["unseen_category_share"] = unseen / sketch.count
    return out


def _suite_checks(suite: Any, table: Any) -> dict[str, dict[str, float]]:
    from keel.data.suite import Suite
    from keel.data.validation import validate

    present = set(table.column_names)
    # column checks on columns the window has; not a table-level check (a row count judges a dataset, not a window)
    # nor a type check (the log keeps numbers as float64, whatever type the client sent)
    checks = [c for c in suite.checks if c.columns() and set(c.columns()) <= present and c.kind != "type"]
    out: dict[str, dict[str, float]] = {}
    failed = 0
    for check in checks:
        try:  # one check that cannot run on live rows (a custom one, say) costs that check, not the window
            result = validate(table, Suite([check], name=suite.name))
        except Exception as exc:  # noqa: BLE001 - user code in a custom check: logged, skipped
            log.warning("keel monitor: suite check %s on %s skipped: %s", check.kind, check.columns(), exc)
            continue
        for checked in result.results:
            out.setdefault(checked.column or "table", {})[f"suite_{checked.kind}"] = checked.failed_share
        failed += len(result.errors)
    if out:
        out["suite"] = {"failed_checks": float(failed)}
    return out


def reference_suite(reference: Any, ctx: Context | None = None) -> Any:
    """The suite the reference dataset version was validated with when it was logged (``keel.data.Suite``), or
    None (not a dataset version, or logged without a suite)."""
    from keel.core.errors import NotFound
    from keel.data.dataset_versions import resolve as resolve_dataset
    from keel.data.suite import Suite

    if not isinstance(reference, str) or reference.endswith((".csv", ".parquet", ".tsv")):
        return None
    ctx = resolve(ctx)
    try:
        version = resolve_dataset(reference, ctx)
    except NotFound:
        return None
    for record in ctx.store.datasets.list_validations(version.id):
        definition = record.result.get("definition")
        if definition:
            return _loadable(definition, Suite)
    return None


def _loadable(definition: dict[str, Any], suite_cls: Any) -> Any:
    """The suite, less the checks this process cannot build (a custom check registered only where it was made)."""
    from keel.core.errors import KeelError

    try:
        return suite_cls.from_dict(definition)
    except KeelError:
        kept = []
        for entry in definition.get("checks", []):
            try:
                kept.extend(suite_cls.from_dict({**definition, "checks": [entry]}).checks)
            except KeelError as exc:
                log.warning("keel monitor: suite check %s skipped: %s", entry.get("kind"), exc)
        return suite_cls(kept, name=str(definition.get("suite", "suite"))) if kept else None


def _answered(table: Any) -> Any:
    """Which rows were answered without an error (a status unknown in older files counts as answered); None when
    all were."""
    import pyarrow.compute as pc

    if "status" not in table.column_names or not table.num_rows:
        return None
    mask = pc.fill_null(pc.less(table["status"], 500), True)
    return None if pc.all(mask).as_py() else mask


def _health(table: Any) -> dict[str, float | None]:
    rows = table.num_rows
    if not rows:
        return {"rows": 0.0, "requests": 0.0, "throughput_per_s": None, "latency_p50_ms": None, "latency_p99_ms": None,
                "error_rate": None}  # fmt: skip
    import pyarrow.compute as pc

    if not {"latency_ms", "time"} <= set(table.column_names):  # a plain table of inputs: no health to tell
        return {"rows": float(rows), "requests": float(rows), "throughput_per_s": None, "latency_p50_ms": None,
                "latency_p99_ms": None, "error_rate": None}  # fmt: skip
    latency = table["latency_ms"].to_numpy()
    span = pc.min_max(table["time"]).as_py()
    seconds = max((span["max"] - span["min"]) / 1000.0, 1.0)
    # every request has one row 0: counting them is the number of requests, without hashing a million ids
    requests = (
        float(pc.sum(pc.equal(table["row"], 0)).as_py() or 0)
        if "row" in table.column_names
        else float(pc.count_distinct(table["request_id"]).as_py())
    )
    failed = 0.0
    if "status" in table.column_names and "row" in table.column_names:  # requests answered with an error (500)
        first_rows = pc.equal(table["row"], 0)
        failed = float(pc.sum(pc.and_(first_rows, pc.fill_null(pc.greater_equal(table["status"], 500), False))).as_py() or 0)
    return {
        "rows": float(rows), "requests": requests, "throughput_per_s": requests / seconds,
        "latency_p50_ms": float(np.percentile(latency, 50)), "latency_p99_ms": float(np.percentile(latency, 99)),
        "error_rate": failed / requests if requests else None,
    }  # fmt: skip


def _performance(table: Any, labels: list[Any] | None, estimator: Estimator | None) -> dict[str, Any]:
    """Realised metrics on the rows whose label arrived; the estimate (CBPE) over every row, when the model logged
    two-class probabilities."""
    out: dict[str, Any] = {"labelled_rows": 0, "realised": None, "estimated": None}
    if not table.num_rows or OUTPUT not in table.column_names:
        return out
    predicted = table[OUTPUT].to_numpy(zero_copy_only=False)
    proba = table["proba1"].to_numpy(zero_copy_only=False).astype(np.float64) if "proba1" in table.column_names else None
    known = np.isfinite(proba) if proba is not None else None
    if proba is not None and known is not None and known.any() and _binary(predicted):
        out["estimated"] = (estimator or Estimator()).estimate(proba[known], predicted[known].astype(int))
    if labels is not None:
        if len(labels) != table.num_rows:
            raise InvalidArgument.for_field("labels", f"{len(labels)} labels", f"one per row ({table.num_rows})")
        import pandas as pd

        given = pd.Series(labels, dtype=object)
        have = given.notna().to_numpy()
        out["labelled_rows"] = int(have.sum())
        if have.any() and _binary(predicted):
            y = given[have].to_numpy().astype(int)
            scores = proba[have] if proba is not None and known is not None and known[have].all() else None
            out["realised"] = realised_metrics(y, predicted[have].astype(int), scores)
    return out


def _binary(values: np.ndarray) -> bool:
    try:
        return set(np.unique(values).tolist()) <= {0, 1}  # True and False are 1 and 0 in a set
    except TypeError:
        return False
