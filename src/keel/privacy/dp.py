"""Differentially private training on a dataset version, paid for from the version's privacy budget.

``train`` checks everything it can first (columns, bounds, params, the budget left), then starts a run, records the
spend on the store (atomic: refused past the budget, and then nothing is trained), trains, evaluates on held-out rows
and registers the model. The spend is in the model version's lineage three ways: its source run (params
``privacy.*``), its metrics (``privacy.epsilon``, ``privacy.delta``: gates and the model card read them) and its
description (the mechanism and the dataset's budget).

>>> keel.privacy.set_budget("adult@1", epsilon=3.0)                                      # doctest: +SKIP
>>> r = keel.privacy.train("adult@1", target="income", epsilon=1.0, bounds={"age": (17, 90)})  # doctest: +SKIP
>>> r.version.uri, r.metrics["accuracy"], r.budget.left                                   # doctest: +SKIP

Held-out metrics are computed on rows of the same version without noise, as any evaluation is: the guarantee covers
the model, whose training rows are the rest. Pass ``test_size=0`` to train on every row and log no metrics.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.context import Context
from keel.context import current as _current
from keel.context import resolve as _ctx
from keel.core.datasets import DatasetVersion
from keel.core.errors import BudgetExceeded, InvalidArgument, MissingExtra, NotFound
from keel.core.models import ModelVersion
from keel.core.numbers import plain
from keel.core.privacy import COMPOSITION, PrivacyBudget, PrivacySpend, check_budget

if TYPE_CHECKING:
    import numpy as np

    from keel.tracking.client import Client

__all__ = ["NEIGHBOURING", "DPResult", "train"]

NEIGHBOURING = "one row replaced by another (the row count is public)"
_DATA_BOUNDS = "data"


@dataclass(frozen=True)
class DPResult:
    """A differentially private training: the registered version, its run, the spend, the budget after it."""

    version: ModelVersion
    run_id: str
    spend: PrivacySpend
    budget: PrivacyBudget
    metrics: dict[str, float]
    mechanism: str
    model: Any = field(repr=False)
    bounds_source: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Prepared:
    x: np.ndarray
    y: np.ndarray
    features: list[str]
    lo: np.ndarray
    hi: np.ndarray
    classes: list[Any]
    bounds_source: dict[str, str]
    target: str


def _column_kind(series: Any) -> str:
    return str(getattr(series.dtype, "kind", "O"))


def _bounds(frame: Any, features: list[str], bounds: Any) -> tuple[list[float], list[float], dict[str, str]]:
    """Per feature (lo, hi): given, from the schema (bool: 0..1), or from the rows only when asked (``"data"``)."""
    given: Mapping[str, Any] = bounds if isinstance(bounds, Mapping) else {}
    if bounds is not None and not isinstance(bounds, Mapping) and bounds != _DATA_BOUNDS:
        raise InvalidArgument.for_field("bounds", bounds, "a mapping of column to (low, high), or 'data'")
    unknown = sorted(set(given) - set(features))
    if unknown:
        raise InvalidArgument.for_field("bounds", unknown, f"feature columns ({', '.join(features)})")
    lows, highs, source, missing = [], [], {}, []
    for col in features:
        if col in given:
            pair = given[col]
            ok = (
                isinstance(pair, Sequence)
                and len(pair) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pair)
            )
            if not ok or pair[0] >= pair[1]:
                raise InvalidArgument.for_field(f"bounds[{col!r}]", pair, "(low, high) finite numbers with low < high")
            lo, hi, where = float(pair[0]), float(pair[1]), "given"
        elif _column_kind(frame[col]) == "b":
            lo, hi, where = 0.0, 1.0, "schema (bool)"
        elif bounds == _DATA_BOUNDS:
            lo, hi = float(frame[col].min()), float(frame[col].max())
            where = "data (not private: read from the rows)"
        else:
            missing.append(col)
            continue
        lows.append(lo)
        highs.append(hi)
        source[col] = where
    if missing:
        raise InvalidArgument(
            f"no bounds for {', '.join(missing)}: DP training clips each feature to public bounds; pass "
            "bounds={column: (low, high)} (known ranges, not read from these rows), or bounds='data' to take them "
            "from the rows (which leaks them: recorded as such)"
        )
    return lows, highs, source


def _prepare(frame: Any, ref: str, target: str, features: Sequence[str] | None, bounds: Any, classes: Any) -> _Prepared:
    import numpy as np

    columns = list(frame.columns)
    if not isinstance(target, str) or target not in columns:
        raise InvalidArgument.for_field("target", target, f"a column of {ref} ({', '.join(map(str, columns))})")
    chosen = [c for c in columns if c != target] if features is None else list(features)
    bad = [c for c in chosen if c not in columns or c == target]
    if bad or not chosen:
        raise InvalidArgument.for_field("features", bad or chosen, f"columns of {ref} other than the target")
    for col in chosen:
        if _column_kind(frame[col]) not in "biuf":
            raise InvalidArgument(
                f"feature {col!r} of {ref} is {frame[col].dtype}: "
                "DP training takes numeric and bool columns (encode the others first)"
            )
    if frame[[*chosen, target]].isna().to_numpy().any():
        raise InvalidArgument(f"{ref} has missing values in the target or the features: fill or drop them first")
    lows, highs, source = _bounds(frame, chosen, bounds)
    y = frame[target].to_numpy()
    labels = sorted(np.unique(y).tolist()) if classes is None else list(classes)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise InvalidArgument.for_field("classes", labels, "two or more distinct labels")
    if not np.isin(y, np.asarray(labels)).all():
        raise InvalidArgument.for_field("classes", labels, f"every label of {target!r} in {ref}")
    x = frame[chosen].to_numpy(dtype=float)
    return _Prepared(x, y, chosen, np.asarray(lows), np.asarray(highs), labels, source, target)


def _learner_params(model: str, params: dict[str, Any]) -> Any:
    from keel.privacy.learners import LEARNERS

    learner = LEARNERS.get(model) if isinstance(model, str) else None
    if learner is None:
        raise InvalidArgument.for_field("model", model, f"one of {', '.join(LEARNERS)}")
    extra = sorted(set(params) - set(learner.params))
    if extra:
        raise InvalidArgument.for_field("params", extra, f"params of {model}: {', '.join(learner.params) or 'none'}")
    for key, value in params.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value > 0):
            raise InvalidArgument.for_field(key, value, "a positive number")
    return learner


def _check_left(ctx: Context, ref: str, epsilon: float, delta: float) -> None:
    """Refuse early, before a run exists, when the budget plainly cannot pay (the store decides again, atomically)."""
    current = ctx.store.privacy.get_budget(ref)
    if current is None:
        raise NotFound(f"dataset {ref} has no privacy budget: set one first (keel privacy budget {ref} --epsilon E)")
    left_eps, left_delta = current.left
    if epsilon > left_eps + 1e-12 or delta > left_delta + 1e-15:
        raise BudgetExceeded(
            f"privacy budget of {ref} exceeded: budget epsilon={plain(current.epsilon)}, delta={plain(current.delta)}; "
            f"spent epsilon={plain(current.spent_epsilon)}, delta={plain(current.spent_delta)}; "
            f"asked epsilon={plain(epsilon)}, delta={plain(delta)}"
        )


def _client(ctx: Context | None) -> tuple[Client, bool]:
    """The tracking client over ``ctx``, and whether it is ours to close (a context other than the current one)."""
    from keel.tracking.client import Client
    from keel.tracking.fluent import get_client

    if ctx is None or ctx is _current():
        return get_client(), False
    return Client(ctx), True


def _split(n: int, test_size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_test = round(n * test_size)
    return order[n_test:], order[:n_test]


def _evaluate(model: Any, x: np.ndarray, y: np.ndarray, features: list[str], classes: list[Any]) -> dict[str, float]:
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    if len(y) == 0:
        return {}
    frame = pd.DataFrame(x, columns=features)
    predicted = model.predict(frame)
    metrics = {"accuracy": float(accuracy_score(y, predicted)), "test_rows": float(len(y))}
    if len(classes) == 2 and len(set(y.tolist())) == 2:
        metrics["roc_auc"] = float(roc_auc_score(y == classes[1], model.predict_proba(frame)[:, 1]))
        metrics["f1"] = float(f1_score(y, predicted, pos_label=classes[1]))
    return metrics


def train(
    dataset: str | DatasetVersion,
    *,
    target: str,
    model: str = "logistic_regression",
    epsilon: float,
    delta: float = 0.0,
    features: Sequence[str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | str | None = None,
    classes: Sequence[Any] | None = None,
    name: str | None = None,
    experiment: str = "privacy",
    test_size: float = 0.25,
    seed: int | None = None,
    ctx: Context | None = None,
    **params: Any,
) -> DPResult:
    """Train a differentially private classifier on a dataset version, spending ``epsilon`` of its budget.

    ``model``: ``logistic_regression`` (objective perturbation; params ``C``, ``max_iter``) or ``gaussian_nb``
    (Laplace sufficient statistics; param ``min_var``); both pure epsilon-DP, so ``delta`` must be 0. ``bounds``:
    each feature's public (low, high); bool columns take 0..1 from the schema; ``"data"`` reads them from the rows
    and says so in the run. ``classes``: the labels (default: those in the target column). ``name``: the registered
    model (default ``<dataset>-dp``). ``seed`` fixes the noise and the split (tests, benchmarks: never in
    production, where the noise must be unpredictable). Raises ``BudgetExceeded`` (nothing trained, no run, no
    version), ``NotFound`` when the version has no budget, ``InvalidArgument`` for bad input."""
    try:
        import numpy as np
    except ImportError:
        raise MissingExtra("numpy", "privacy") from None
    from keel.data import get, resolve
    from keel.registry import register

    eps, d = check_budget(epsilon, delta)
    learner = _learner_params(model, params)
    if d > learner.delta:
        raise InvalidArgument.for_field("delta", delta, f"0: {model} is pure epsilon-DP and spends no delta")
    if isinstance(test_size, bool) or not isinstance(test_size, int | float) or not 0 <= test_size < 1:
        raise InvalidArgument.for_field("test_size", test_size, "a fraction from 0 to below 1")
    resolved = _ctx(ctx)
    version = resolve(dataset, resolved)
    prepared = _prepare(get(version, run=False, ctx=resolved), version.ref, target, features, bounds, classes)
    _check_left(resolved, version.ref, eps, d)
    rng = np.random.default_rng(seed)
    train_rows, test_rows = _split(len(prepared.y), float(test_size), rng)
    if len(set(prepared.y[train_rows].tolist())) < 2:
        raise InvalidArgument(f"the training rows of {version.ref} hold one class only: nothing to learn")
    client, own = _client(ctx)
    try:
        return _run(client, resolved, version, prepared, learner, model, eps, d, params, train_rows, test_rows, rng,
                    name=name, experiment=experiment, test_size=float(test_size), seed=seed, register=register)  # fmt: skip
    finally:
        if own:
            client.writer.close()


def _run(
    client: Client,
    ctx: Context,
    version: DatasetVersion,
    p: _Prepared,
    learner: Any,
    model: str,
    eps: float,
    d: float,
    params: dict[str, Any],
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    rng: np.random.Generator,
    *,
    name: str | None,
    experiment: str,
    test_size: float,
    seed: int | None,
    register: Any,
) -> DPResult:
    import pandas as pd

    sources = sorted(set(p.bounds_source.values()))
    run_params = {
        "dataset": version.ref, "target": p.target, "model": model, "privacy.mechanism": learner.mechanism,
        "privacy.epsilon": eps, "privacy.delta": d, "privacy.composition": COMPOSITION, "privacy.neighbouring": NEIGHBOURING,
        "privacy.bounds_source": "; ".join(f"{s}: {sum(v == s for v in p.bounds_source.values())} columns" for s in sources),
        "features": len(p.features), "test_size": test_size, **params,
        # the seed's value would let a reader regenerate the noise and take it off: only whether there was one
        "privacy.noise": "seeded: reproducible, NOT private" if seed is not None else "fresh from the OS",
    }  # fmt: skip
    run = client.create_run(experiment, f"dp-{model}-eps{plain(eps)}", parent_run_id=ctx.run_id, params=run_params)
    try:
        spend = ctx.store.privacy.spend(
            PrivacySpend(
                dataset=version.ref, epsilon=eps, delta=d, mechanism=learner.mechanism, run_id=run.id, request_id=uuid.uuid4().hex
            )
        )
    except BudgetExceeded:  # another run spent it since the early check: this one trains nothing
        client.set_tags(run.id, {"keel.privacy": "refused: budget exceeded"})
        client.end_run(run.id, "failed")
        raise
    try:
        ctx.store.datasets.link_run(run.id, version.id, "input")
        bounds = {f: [lo, hi] for f, lo, hi in zip(p.features, p.lo.tolist(), p.hi.tolist(), strict=True)}
        client.log_dict(run.id, {"dataset": version.ref, "target": p.target, "features": p.features, "bounds": bounds,
                                 "bounds_source": p.bounds_source, "classes": p.classes}, "privacy.json")  # fmt: skip
        client.set_tags(run.id, {"keel.privacy": f"spent epsilon={plain(eps)}, delta={plain(d)} of {version.ref}"})
        fit_params = {k: v for k, v in params.items() if v is not None}
        trained = learner.fit(p.x[train_rows], p.y[train_rows], classes=p.classes, lo=p.lo, hi=p.hi, features=p.features,
                              epsilon=eps, rng=rng, **fit_params)  # fmt: skip
        client.log_params(run.id, {f"privacy.{k}": v for k, v in trained.details.items()})
        metrics = _evaluate(trained.model, p.x[test_rows], p.y[test_rows], p.features, p.classes)
        metrics.update({"privacy.epsilon": eps, "privacy.delta": d, "train_rows": float(len(train_rows))})
        client.log_metrics(run.id, metrics)
        after = ctx.store.privacy.get_budget(version.ref)
        assert after is not None  # the spend above needed it
        # the signature's example: the public bounds, not rows (float columns accept int and bool input)
        example = pd.DataFrame([p.lo, p.hi], columns=p.features)
        registered = register(
            trained.model,
            name or f"{version.name}-dp",
            run=run.id,
            input_example=example,
            datasets=[version.ref],
            description=_description(model, learner.mechanism, version.ref, eps, d, after),
            ctx=ctx,
        )
    except BaseException:
        client.end_run(run.id, "failed")
        raise
    client.end_run(run.id, "finished")
    return DPResult(registered, run.id, spend, after, metrics, learner.mechanism, trained.model, p.bounds_source)


def _description(model: str, mechanism: str, ref: str, eps: float, d: float, after: PrivacyBudget) -> str:
    return (
        f"Differentially private {model.replace('_', ' ')} ({mechanism}) trained on {ref}. "
        f"Spent epsilon={plain(eps)}, delta={plain(d)} of the dataset's privacy budget "
        f"(epsilon={plain(after.epsilon)}, delta={plain(after.delta)}; spent in all after this run: "
        f"epsilon={plain(after.spent_epsilon)}, delta={plain(after.spent_delta)}; {COMPOSITION})."
    )
