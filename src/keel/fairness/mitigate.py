"""Mitigation: a registered model made fairer with fairlearn, registered as a new version, with before/after numbers.

>>> m = keel.fairness.mitigate("models:/credit/3", "credit-test@1", sensitive="sex", target="approved")  # doctest: +SKIP
>>> m.version.uri, m.table                                                                            # doctest: +SKIP

Two methods:

- ``threshold_optimizer`` (post-processing): fairlearn's ``ThresholdOptimizer`` over the version's fitted
  estimator (``prefit``), thresholds per group fitted on ``train_data`` if given, else on ``data``. It needs
  the sensitive features at predict time: the new version predicts from one frame holding them (its signature
  lists them; see ``keel.fairness.mitigated``).
- ``exponentiated_gradient`` (reduction): fairlearn's ``ExponentiatedGradient`` refits a clone of the version's
  estimator (it must take ``sample_weight`` in ``fit``) on the version's recorded training data (or
  ``train_data``) under the constraint. Predicting needs no sensitive column (unless the model used it).

The new version (of the same model, or ``name``) records its lineage: its description names the source
version, its metrics hold ``mitigation.source_version`` and the before/after numbers, its datasets are the
source's training data (and the data the mitigator was fitted on, when that is a dataset version), and its
source run is a run logged for the mitigation (params: method, constraint, source, sensitive features; metrics:
``before.*`` and ``after.*``; the report as ``mitigation.html``). Its fairness assessment is recorded with it.
The before/after numbers are computed on ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument, MissingExtra
from keel.core.models import ModelVersion
from keel.fairness.mitigated import MitigatedModel, quiet_fairlearn

if TYPE_CHECKING:
    import pandas as pd

METHODS = ("threshold_optimizer", "exponentiated_gradient")
CONSTRAINTS = ("demographic_parity", "equalized_odds")
SUMMARY = ("accuracy", "selection_rate", "demographic_parity_difference", "equalized_odds_difference")
TABLE_COLUMNS = ["metric", "group", "before", "after", "change"]


@dataclass(frozen=True, eq=False)  # a DataFrame field has no truth value to compare by
class Mitigation:
    """What ``mitigate`` made: the source and new versions, the run that made it, the before/after numbers on the
    evaluation data (``table``: one row per metric and group, ``group`` empty for overall numbers) and the new
    version's fairness assessment."""

    source: ModelVersion
    version: ModelVersion
    method: str
    constraint: str
    sensitive: list[str]
    run_id: str
    table: pd.DataFrame = field(repr=False)
    assessment: Any = field(default=None, repr=False)

    @property
    def before(self) -> dict[str, float]:
        """The overall numbers of the source version (accuracy, selection rate, DP and EO differences)."""
        return self._overall("before")

    @property
    def after(self) -> dict[str, float]:
        """The same numbers for the mitigated version."""
        return self._overall("after")

    def _overall(self, side: str) -> dict[str, float]:
        rows = self.table[self.table["group"] == ""]
        return {str(m): float(v) for m, v in zip(rows["metric"], rows[side], strict=True)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the source and new versions, method, constraint, run, overall numbers and the table's rows."""
        return {
            "source": self.source.uri, "version": self.version.uri, "method": self.method, "constraint": self.constraint,
            "sensitive": self.sensitive, "run_id": self.run_id, "before": self.before, "after": self.after,
            "table": [{k: (None if v != v else v) for k, v in row.items()} for row in self.table.to_dict("records")],
        }  # fmt: skip

    def html(self) -> str:
        """The before/after table and selection rates per group as an HTML fragment (every value escaped)."""
        from keel.fairness.mitigation_report import fragment

        return fragment(self)

    def report(self) -> str:
        """A whole offline HTML page (``fragment`` in keel's report page)."""
        from keel.core.html import page

        return page(f"mitigation of {self.source.uri}", self.html())


def mitigate(
    model_uri: str,
    data: Any,
    sensitive: str | list[str],
    y_true: Any = None,
    *,
    target: str | None = None,
    method: str = "threshold_optimizer",
    constraint: str = "demographic_parity",
    name: str | None = None,
    train_data: Any = None,
    random_state: int = 0,
    ctx: Context | None = None,
) -> Mitigation:
    """Mitigate the unfairness of ``model_uri`` with fairlearn and register the result as a new version.

    ``data``: the evaluation data (a DataFrame or a dataset reference such as ``"credit-test@1"``) holding the
    feature columns, the ``sensitive`` column(s) and the labels: the column ``target``, or ``y_true`` (a column
    name or the labels themselves). ``method``: ``threshold_optimizer`` or ``exponentiated_gradient``;
    ``constraint``: ``demographic_parity`` or ``equalized_odds``. ``name``: register under another model name
    (default: the source's). ``train_data``: what the mitigator is fitted on (default: ``data`` for the threshold
    optimizer, the version's recorded training data for exponentiated gradient). ``random_state`` fixes the draws
    of the randomized predictions. Returns a ``Mitigation`` (the new version, the before/after table).
    """
    _check_choice("method", method, METHODS)
    _check_choice("constraint", constraint, CONSTRAINTS)
    sensitive = _names(sensitive)
    ctx = _ctx(ctx)
    try:
        import fairlearn  # noqa: F401 - only to say what to install
    except ImportError:
        raise MissingExtra("fairlearn", "fairness") from None
    import keel.registry

    loaded = keel.registry.load(model_uri, ctx)
    source = loaded.version
    client, own_client = _client(ctx)
    run = client.create_run(
        None, f"mitigate {source.name} v{source.version}", parent_run_id=ctx.run_id,
        tags={"keel.kind": "mitigation", "keel.mitigated_from": source.uri},
        params={"method": method, "constraint": constraint, "source_model": source.name,
                "source_version": source.version, "sensitive": ",".join(sensitive)},
    )  # fmt: skip
    try:
        result = _mitigate(ctx, client, run.id, loaded, data, sensitive, y_true, target, method, constraint, name,
                           train_data, random_state)  # fmt: skip
    except BaseException:
        _end_failed(client, run.id)
        raise
    finally:
        if own_client:
            client.writer.close()
    return result


def _mitigate(
    ctx: Context, client: Any, run_id: str, loaded: Any, data: Any, sensitive: list[str], y_true: Any, target: str | None,
    method: str, constraint: str, name: str | None, train_data: Any, random_state: int,
) -> Mitigation:  # fmt: skip
    import keel.registry

    source: ModelVersion = loaded.version
    frame, data_ref = _frame(data, "data", ctx, run_id)
    y = _labels(frame, y_true, target)
    label_column = target if target is not None else (y_true if isinstance(y_true, str) else None)
    features = _features(source, loaded.model, frame, label_column, sensitive)
    _require_columns(frame, [*features, *sensitive], "data")
    fit_frame, fit_ref = (frame, data_ref) if method == "threshold_optimizer" and train_data is None else (None, None)
    if fit_frame is None:
        fit_frame, fit_ref = _training_frame(ctx, run_id, source, train_data)
    in_sample = fit_frame is frame
    if in_sample:  # said on the run and the version: its before/after numbers flatter the mitigation
        client.set_tags(run_id, {"keel.mitigation.in_sample": "true: fitted on the evaluation data; pass train_data="})
    fit_y = y if in_sample else _labels(fit_frame, label_column, None, where="training data")
    _require_columns(fit_frame, [*features, *sensitive], "training data")
    model = _fit(method, constraint, loaded.model, fit_frame, fit_y, features, sensitive, random_state)
    sf = frame[sensitive[0]] if len(sensitive) == 1 else frame[sensitive]
    before_pred = loaded.predict(frame)
    after_pred = model.predict(frame)
    table = before_after(y, before_pred, after_pred, sf)
    client.log_metrics(run_id, {
        **{f"before.{k}": v for k, v in _overall(table, "before").items()},
        **{f"after.{k}": v for k, v in _overall(table, "after").items()},
        "mitigation.source_version": float(source.version),
    })  # fmt: skip
    datasets = list(dict.fromkeys([*source.datasets, *([fit_ref] if fit_ref else [])]))
    version = keel.registry.register(
        model, name or source.name, run=run_id, input_example=frame[model.columns].head(5), datasets=datasets,
        description=_description(source, method, constraint, sensitive, model.columns, fit_ref, in_sample), ctx=ctx,
    )  # fmt: skip
    assessment = _assess(ctx, version, data_ref or frame, sensitive, y, model.columns, run_id)
    mitigation = Mitigation(source, version, method, constraint, sensitive, run_id, table, assessment)
    ctx.log_text(run_id, mitigation.report(), "mitigation.html")
    client.end_run(run_id)
    return mitigation


def _end_failed(client: Any, run_id: str) -> None:
    from keel.core.errors import KeelError

    try:
        client.end_run(run_id, "failed")
    except KeelError:  # the store is what failed: the original error says more
        pass


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidArgument.for_field(field_name, value, " or ".join(repr(c) for c in choices))


def _names(sensitive: Any) -> list[str]:
    names = [sensitive] if isinstance(sensitive, str) else list(sensitive) if isinstance(sensitive, (list, tuple)) else []
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidArgument.for_field("sensitive", sensitive, "a column name or a list of column names of the data")
    return names


def _client(ctx: Context) -> tuple[Any, bool]:
    """The process-wide tracking client when ``ctx`` is the current context, else one over ``ctx`` (ours to close)."""
    from keel.context import current
    from keel.tracking.client import Client
    from keel.tracking.fluent import get_client

    if ctx is current():
        return get_client(), False
    return Client(ctx), True


def _frame(data: Any, what: str, ctx: Context, run_id: str) -> tuple[pd.DataFrame, str | None]:
    """``data`` as pandas, and its exact dataset reference when it is a dataset version (read as the run's input)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True), None
    ref = getattr(data, "ref", data)
    if isinstance(ref, str):
        import keel.data

        version = keel.data.resolve(ref, ctx)
        return keel.data.get(version, run=run_id, ctx=ctx), version.ref
    from keel.registry.signature import to_frame_or_array

    try:
        converted = to_frame_or_array(data)
    except InvalidArgument:
        converted = None
    if isinstance(converted, pd.DataFrame):
        return converted.reset_index(drop=True), None
    raise InvalidArgument.for_field(what, type(data).__name__, "a DataFrame (pandas, polars, Arrow) or a dataset reference")


def _labels(frame: pd.DataFrame, y_true: Any, target: str | None, where: str = "data") -> Any:
    y = _raw_labels(frame, y_true, target, where)
    import numpy as np

    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:  # fairlearn's rates read 1 as the positive class: other labels would be misread silently
        shown = ", ".join(map(repr, sorted(values, key=str)[:5]))
        raise InvalidArgument.for_field("labels", shown, f"binary labels 0/1 (1: the positive class) in the {where}")
    return y


def _raw_labels(frame: pd.DataFrame, y_true: Any, target: str | None, where: str) -> Any:
    import numpy as np

    column = target if target is not None else y_true if isinstance(y_true, str) else None
    if column is not None:
        if column not in frame.columns:
            raise InvalidArgument.for_field("target", column, f"a column of the {where}")
        return frame[column].to_numpy()
    if y_true is None:
        what = "target (a column name) for the training data" if where != "data" else "target= or y_true="
        raise InvalidArgument(f"the labels are missing: pass {what}")
    y = np.asarray(y_true)
    if y.ndim != 1 or len(y) != len(frame):
        raise InvalidArgument.for_field("y_true", f"{y.shape}", f"one label per row of the data ({len(frame)} rows)")
    return y


def _features(source: ModelVersion, estimator: Any, frame: pd.DataFrame, label: str | None, sensitive: list[str]) -> list[str]:
    """The columns the source model takes: its signature's, else the estimator's ``feature_names_in_``, else every
    column of the data but the labels and the sensitive ones."""
    inputs = source.signature.get("inputs") or {}
    if inputs.get("type") == "dataframe":
        return [c["name"] for c in inputs["columns"]]
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [c for c in frame.columns if c != label and c not in sensitive]


def _require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"the {what} has no column {', '.join(map(repr, missing))} (needed: features and sensitive)")


def _training_frame(ctx: Context, run_id: str, source: ModelVersion, train_data: Any) -> tuple[pd.DataFrame, str | None]:
    """``train_data``, else the source version's recorded training datasets (read as inputs of the run)."""
    if train_data is not None:
        return _frame(train_data, "train_data", ctx, run_id)
    if not source.datasets:
        raise InvalidArgument(
            f"{source.uri} records no training data to refit on: pass train_data= (a DataFrame or dataset reference)"
        )
    import pandas as pd

    frames = [_frame(ref, "training data", ctx, run_id)[0] for ref in source.datasets]
    joined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return joined, (source.datasets[0] if len(source.datasets) == 1 else None)


def _fit(
    method: str, constraint: str, estimator: Any, frame: pd.DataFrame, y: Any, features: list[str], sensitive: list[str],
    random_state: int,
) -> MitigatedModel:  # fmt: skip
    sf = frame[sensitive[0]] if len(sensitive) == 1 else frame[sensitive]
    X = frame[features]
    with quiet_fairlearn():
        if method == "threshold_optimizer":
            from fairlearn.postprocessing import ThresholdOptimizer

            mitigator: Any = ThresholdOptimizer(estimator=estimator, constraints=constraint, prefit=True)
            try:
                mitigator.fit(X, y, sensitive_features=sf)
            except TypeError as exc:  # fairlearn checks the estimator is a fitted scikit-learn one
                raise InvalidArgument(
                    f"threshold_optimizer needs a fitted scikit-learn compatible estimator; {type(estimator).__name__} "
                    f"is not one ({exc})"
                ) from None
            return MitigatedModel(mitigator, features, sensitive, needs_sensitive=True, random_state=random_state)
        from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
        from sklearn.base import clone

        try:
            fresh = clone(estimator)
        except TypeError as exc:
            raise InvalidArgument(f"exponentiated_gradient refits the model, which cannot be cloned: {exc}") from None
        moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
        mitigator = ExponentiatedGradient(fresh, constraints=moment)
        try:
            mitigator.fit(X, y, sensitive_features=sf)
        except TypeError as exc:  # fairlearn weights the rows: fit(X, y, sample_weight=...)
            raise InvalidArgument(
                f"exponentiated_gradient refits {type(estimator).__name__} with sample_weight, which it does not take "
                f"({exc}); use method='threshold_optimizer'"
            ) from None
    return MitigatedModel(mitigator, features, sensitive, needs_sensitive=False, random_state=random_state)


def before_after(y_true: Any, before: Any, after: Any, sensitive_features: Any) -> pd.DataFrame:
    """The before/after table: overall accuracy, selection rate, demographic parity and equalized odds differences,
    then accuracy and selection rate per group (the groups of the sensitive features' intersection), from fairlearn."""
    import pandas as pd

    sides = {"before": _numbers(y_true, before, sensitive_features), "after": _numbers(y_true, after, sensitive_features)}
    keys = list(sides["before"])
    rows = [
        {"metric": metric, "group": group, "before": sides["before"][(metric, group)], "after": sides["after"][(metric, group)]}
        for metric, group in keys
    ]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS[:-1])
    table["change"] = table["after"] - table["before"]
    return table


def _numbers(y_true: Any, y_pred: Any, sf: Any) -> dict[tuple[str, str], float]:
    from fairlearn.metrics import MetricFrame, demographic_parity_difference, equalized_odds_difference, selection_rate
    from sklearn.metrics import accuracy_score

    with quiet_fairlearn():
        frame = MetricFrame(
            metrics={"accuracy": accuracy_score, "selection_rate": selection_rate}, y_true=y_true, y_pred=y_pred,
            sensitive_features=sf,
        )  # fmt: skip
        overall = frame.overall
        out = {
            ("accuracy", ""): float(overall["accuracy"]),
            ("selection_rate", ""): float(overall["selection_rate"]),
            ("demographic_parity_difference", ""): float(demographic_parity_difference(y_true, y_pred, sensitive_features=sf)),
            ("equalized_odds_difference", ""): float(equalized_odds_difference(y_true, y_pred, sensitive_features=sf)),
        }
        by_group = frame.by_group
    for metric in ("selection_rate", "accuracy"):
        for group, value in by_group[metric].items():
            out[(metric, group_label(group, by_group.index.names))] = float(value)
    return out


def group_label(group: Any, names: Any) -> str:
    """A group as text: its value for one sensitive feature, ``sex=F, age=old`` for several."""
    if isinstance(group, tuple):
        return ", ".join(f"{n}={v}" for n, v in zip(names, group, strict=True))
    return str(group)


def _overall(table: pd.DataFrame, side: str) -> dict[str, float]:
    rows = table[table["group"] == ""]
    return {str(m): float(v) for m, v in zip(rows["metric"], rows[side], strict=True)}


def _description(
    source: ModelVersion, method: str, constraint: str, sensitive: list[str], columns: list[str], fit_ref: str | None,
    in_sample: bool = False,
) -> str:  # fmt: skip
    fitted = f" fitted on {fit_ref}" if fit_ref else ""
    if in_sample:
        fitted += " (fitted on the data it was assessed on: an in-sample before/after; give train_data= for a fair one)"
    needs = (
        f" Predicts from frames holding the sensitive column(s) {', '.join(sensitive)} as well as the features."
        if method == "threshold_optimizer" else ""
    )  # fmt: skip
    return (f"Mitigated from {source.uri} with fairlearn's {method} ({constraint}){fitted}; sensitive: "
            f"{', '.join(sensitive)}.{needs} Needs fairlearn to load.")  # fmt: skip


def _assess(ctx: Context, version: ModelVersion, data: Any, sensitive: list[str], y: Any, columns: list[str],
            run_id: str) -> Any:  # fmt: skip
    """The new version's fairness assessment on the evaluation data (``keel.fairness.assess``), recorded with it and
    logged on the mitigation's run.

    The version is a pickle (a fairlearn mitigator has no skops form) that this call registered a moment ago:
    versions are immutable and their bytes are checked against the recorded hash, so what is unpickled is what was
    just written, and no opt-in is asked for it (a shared server would otherwise refuse the caller its own model)."""
    from keel.fairness.assess import assess

    return assess(version.uri, data, sensitive, y, features=columns, run=run_id, trust_pickle=True, ctx=ctx)
