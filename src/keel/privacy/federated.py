"""Federated learning: a logistic regression trained over silos whose rows never leave them.

Each silo is its own process (``executor="process"``, spawned) or Ray actor (``"ray"``) that opens the stores
itself and loads ITS OWN dataset version; the coordinator sends it dataset references and the global
parameters, and gets back parameters and row counts only. The rounds are runs: a parent run, a child run per
round (participants, each silo's metrics logged by the silo on its own rows, global metrics on a holdout the
coordinator holds), and the final model is registered with every silo's dataset version as its training data.

>>> result = federated_train(["clinic-a@1", "clinic-b@1"], target="label", holdout="clinic-test@1")  # doctest: +SKIP
>>> result.version.uri, result.history                                                           # doctest: +SKIP

Keel's own coordinator, not Flower: Flower 1.42 pins protobuf<7, typer<0.21, rich<15, packaging<26 and uvicorn
0.49.x against keel's protobuf 7 (onnx, ray), typer 0.29, rich 15, packaging 26 and uvicorn 0.54, and pip then
backtracks to flwr 0.18, whose grpcio<=1.43 does not build on Python 3.11. Its simulation would pull Ray (which
keel has already) and its deployment a gRPC server (a second network service to secure); what keel needs here
is a few hundred lines.

What crosses the silo boundary is one message format (``keel.privacy.silos``: numeric arrays and a JSON header,
never a Python object); ``on_message(direction, silo, data)`` sees every message's exact bytes.

Scaling without sharing data: each silo standardises its features with its OWN mean and deviation, which
never leave it, and converts parameters between its standardised space and the raw feature space on the
way in and out. Parameters travel (and are averaged) in raw feature space, so the global model needs no scaler.
With ``epsilon`` (differential privacy) the silo statistics would leak unnoised, so public ``bounds`` scale
instead, and the registered model is a pipeline of that fixed scaler and the logistic regression.

A silo's row count travels (FedAvg weights by it); the neighbouring relation of the DP guarantee is keel.privacy's
(one row replaced by another: the count is public). Not done: secure aggregation (the coordinator sees each
silo's parameters), client sampling per round, silos on other machines (a Ray cluster is the way today).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core.entities import RunStatus
from keel.core.errors import FederatedError, InvalidArgument
from keel.core.numbers import plain
from keel.core.privacy import COMPOSITION
from keel.privacy.silos import Hook, Message, Silos, connect, label_order, plain_label, scores, stop_all, unit

if TYPE_CHECKING:
    import numpy as np

    from keel.context import Context
    from keel.core.models import ModelVersion
    from keel.tracking.client import Client

AGGREGATIONS = ("fedavg", "median", "trimmed_mean")
EXECUTORS = ("process", "ray", "inline")


# aggregation ----------------------------------------------------------------------------------------------------
def aggregate(updates: Sequence[np.ndarray], rows: Sequence[int], method: str = "fedavg", trim: float = 0.1) -> np.ndarray:
    """Combine silos' parameter arrays (same shape): ``fedavg`` weights by rows; ``median`` and ``trimmed_mean``
    (``trim`` of the silos cut at each end, coordinate by coordinate) ignore the counts, so a silo claiming many
    rows cannot outvote the others."""
    import numpy as np

    stacked = np.stack([np.asarray(u, dtype="float64") for u in updates])
    if method == "fedavg":
        weights = np.asarray(rows, dtype="float64")
        return np.tensordot(weights / weights.sum(), stacked, axes=1)
    if method == "median":
        return np.median(stacked, axis=0)  # type: ignore[no-any-return]
    if method == "trimmed_mean":
        cut = math.floor(trim * len(stacked))
        ordered = np.sort(stacked, axis=0)
        return ordered[cut : len(stacked) - cut].mean(axis=0)  # type: ignore[no-any-return]
    raise InvalidArgument.for_field("aggregation", method, f"one of {', '.join(AGGREGATIONS)}")


# the coordinator --------------------------------------------------------------------------------------------------
@dataclass
class RoundRecord:
    """One round: its child run, the silos that took part, their rows, the holdout metrics, the bytes exchanged."""

    round: int
    run_id: str
    participants: list[str]
    rows: int
    metrics: dict[str, float]  # global metrics on the holdout (empty without one)
    bytes_exchanged: int


@dataclass
class FederatedResult:
    """A federated training: the parent run, the final model and its registered version, every round."""

    run_id: str
    model: Any  # a scikit-learn LogisticRegression over ``features`` (behind the bounds' scaler with epsilon)
    version: ModelVersion | None
    features: list[str]
    classes: list[Any]
    silos: list[str]  # the exact dataset versions, ``name@N``
    rounds: list[RoundRecord]

    @property
    def history(self) -> list[float]:
        """Holdout accuracy after each round."""
        return [r.metrics.get("holdout.accuracy", float("nan")) for r in self.rounds]


def _check(
    silos: Sequence[str], rounds: int, local_epochs: int, aggregation: str, trim: float, executor: str,
    learning_rate: float, batch_size: int, alpha: float,
) -> None:  # fmt: skip
    if isinstance(silos, str) or not silos or not all(isinstance(s, str) and s for s in silos):
        raise InvalidArgument.for_field("silos", silos, "a non-empty list of dataset references, one per silo")
    if aggregation not in AGGREGATIONS:
        raise InvalidArgument.for_field("aggregation", aggregation, f"one of {', '.join(AGGREGATIONS)}")
    if executor not in EXECUTORS:
        raise InvalidArgument.for_field("executor", executor, f"one of {', '.join(EXECUTORS)}")
    for key, value in (("rounds", rounds), ("local_epochs", local_epochs), ("batch_size", batch_size)):
        if type(value) is not int or value < 1:
            raise InvalidArgument.for_field(key, value, "a positive integer")
    if not _finite(learning_rate) or learning_rate <= 0:
        raise InvalidArgument.for_field("learning_rate", learning_rate, "a positive number")
    if not _finite(alpha) or alpha < 0:
        raise InvalidArgument.for_field("alpha", alpha, "a number >= 0")
    if not _finite(trim) or not 0 <= trim < 0.5:
        raise InvalidArgument.for_field("trim", trim, "a fraction in [0, 0.5)")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _features(versions: list[Any], target: str, features: Sequence[str] | None) -> list[str]:
    """The feature columns, from the versions' schemas (metadata: no rows are read here)."""
    first = versions[0]
    chosen = list(features) if features is not None else [c for c in first.columns if c != target]
    if not chosen:
        raise InvalidArgument.for_field("features", features, "at least one feature column")
    for version in versions:
        missing = [c for c in [*chosen, target] if c not in version.columns]
        if missing:
            raise InvalidArgument(f"dataset {version.ref} has no column {missing[0]!r}")
    return chosen


def _sklearn_model(coef: np.ndarray, intercept: np.ndarray, classes: list[Any], features: list[str]) -> Any:
    """The parameters as a fitted scikit-learn LogisticRegression (same probabilities: sigmoid or softmax)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    model.classes_ = np.array(classes)
    model.coef_, model.intercept_ = coef.copy(), intercept.copy()
    model.n_features_in_ = len(features)
    model.feature_names_in_ = np.array(features, dtype=object)
    model.n_iter_ = np.array([0])
    return model


def federated_train(
    silos: Sequence[str],
    *,
    target: str,
    features: Sequence[str] | None = None,
    rounds: int = 10,
    local_epochs: int = 1,
    aggregation: str = "fedavg",
    trim: float = 0.1,
    executor: str = "process",
    holdout: str | None = None,
    name: str | None = None,
    experiment: str = "federated",
    seed: int = 0,
    learning_rate: float = 0.1,
    batch_size: int = 32,
    alpha: float = 1e-4,
    epsilon: float | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    classes: Sequence[Any] | None = None,
    clip: float = 1.0,
    on_message: Hook | None = None,
    ctx: Context | None = None,
) -> FederatedResult:
    """Train a logistic regression over ``silos`` (dataset references, one per silo) without moving their rows.

    Each round the coordinator sends the global parameters, every silo runs ``local_epochs`` of mini-batch SGD
    on its own rows and returns its parameters and row count, and the coordinator combines them
    (``aggregation``: ``fedavg`` weighted by rows, coordinate-wise ``median``, or ``trimmed_mean`` cutting
    ``trim`` at each end). ``holdout``: a dataset the coordinator may read, for global metrics per round.
    The model is registered as ``name`` (default ``"federated"``) with the silos' versions as its datasets.
    ``on_message(direction, silo, data)``: sees the bytes of every message to (``"to_silo"``) and from
    (``"from_silo"``) each silo. ``executor="inline"`` keeps the silos in this process, for debugging; ``"process"``
    spawns them, so a script calling this needs the usual ``if __name__ == "__main__":`` guard.

    ``epsilon``: differential privacy for each silo's rows. Every silo's dataset version pays ``epsilon`` (delta 0)
    from its privacy budget before anything is trained; each local epoch is then one full-batch gradient step on
    per-row gradients clipped to L1 norm ``clip`` plus Laplace noise (epsilon / (rounds * local_epochs) each, basic
    composition). It needs public ``bounds`` per feature (the model scales into them; no silo statistics) and the
    ``classes`` (which labels a silo holds is not public), and silos log only their row counts.
    """
    import keel.data
    import keel.registry
    from keel.context import current as current_context
    from keel.tracking.client import Client
    from keel.tracking.fluent import get_client

    _check(silos, rounds, local_epochs, aggregation, trim, executor, learning_rate, batch_size, alpha)
    owned = ctx is not None and ctx is not current_context()  # a client of our own, whose writer we stop
    client = Client(ctx) if owned else get_client()
    try:
        ctx = client.context
        versions = [keel.data.resolve(ref, ctx) for ref in silos]
        refs = [v.ref for v in versions]
        if len(set(refs)) != len(refs):
            raise InvalidArgument.for_field("silos", list(silos), "different dataset versions (each silo holds its own)")
        if holdout is not None and keel.data.resolve(holdout, ctx).ref in refs:  # the coordinator would read a silo's rows
            raise InvalidArgument.for_field("holdout", holdout, "a dataset version none of the silos holds")
        cols = _features(versions, target, features)
        dp = _private_plan(ctx, refs, cols, epsilon, bounds, classes, clip, rounds * local_epochs)
        store_uri, artifacts_url = ctx.store_uri, ctx.artifacts_url
        model_name = name or "federated"
        params = {"silos": len(refs), "rounds": rounds, "local_epochs": local_epochs, "aggregation": aggregation, "trim": trim,
                  "executor": executor, "target": target, "features": cols, "learning_rate": learning_rate,
                  "batch_size": batch_size, "alpha": alpha, "seed": seed}  # fmt: skip
        parent = client.create_run(experiment, model_name, tags={"keel.kind": "federated"}, params={**params, **dp.params})
        links: Silos | None = None
        try:
            dp.pay(ctx, client, parent.id)  # before any silo opens its rows
            test = None
            if holdout is not None:
                frame = keel.data.get(holdout, run=parent.id, ctx=ctx)
                x_test = frame[cols].to_numpy(dtype="float64")
                test = (dp.space(x_test), frame[target].to_numpy(), frame[cols].head(5))
            links = Silos(connect(executor, len(refs)), on_message)
            opened = links.exchange([
                Message("open", {"silo": i, "store": store_uri, "artifacts": artifacts_url, "dataset": ref, "target": target,
                                 "features": cols, "seed": seed, "run_id": parent.id}, dp.open_arrays)
                for i, ref in enumerate(refs)
            ])  # fmt: skip
            labels = dp.classes or sorted({repr(c): c for r in opened for c in r.fields["classes"]}.values(), key=label_order)
            if len(labels) < 2:
                raise InvalidArgument(f"the silos' {target!r} holds one class ({labels[0]!r}): nothing to learn")
            result = FederatedResult(parent.id, None, None, cols, labels, refs, [])
            coef, intercept = _initial(len(labels), len(cols))
            for r in range(1, rounds + 1):
                coef, intercept = _round(client, links, result, r, coef, intercept, aggregation, trim, test, {
                    "round": r, "classes": labels, "epochs": local_epochs, "learning_rate": learning_rate,
                    "batch_size": batch_size, "alpha": alpha, **dp.train_fields,
                })  # fmt: skip
            result.model = dp.model(_sklearn_model(coef, intercept, labels, cols), cols)
            if dp.epsilon is not None:
                client.log_metrics(parent.id, {"privacy.epsilon": dp.epsilon, "privacy.delta": 0.0})
            description = (
                f"federated logistic regression: {aggregation}"
                + (f" (trim {trim})" if aggregation == "trimmed_mean" else "")
                + f" over {len(refs)} silos ({', '.join(refs)}), {rounds} rounds of {local_epochs} local epoch(s)"
                + dp.description
            )
            result.version = keel.registry.register(
                result.model, model_name, run=parent.id, datasets=refs, holdout=holdout,
                input_example=test[2] if test is not None else None, description=description, ctx=ctx,
            )  # fmt: skip
            client.set_tags(parent.id, {"keel.model": result.version.uri})
        except BaseException as exc:
            client.set_tags(parent.id, {"keel.error": f"{type(exc).__name__}: {exc}"[:8000]})
            client.end_run(parent.id, RunStatus.FAILED)
            if links is not None:
                stop_all(links)
            raise
        links.close()
        client.end_run(parent.id, RunStatus.FINISHED)
        return result
    finally:
        if owned:
            client.writer.close()


@dataclass
class _PrivatePlan:
    """What differential privacy changes (nothing when ``epsilon`` is None)."""

    epsilon: float | None = None
    refs: list[str] = field(default_factory=list)
    lo: Any = None
    hi: Any = None
    classes: list[Any] | None = None
    clip: float = 1.0
    steps: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def open_arrays(self) -> dict[str, Any]:
        return {} if self.epsilon is None else {"lo": self.lo, "hi": self.hi}

    @property
    def train_fields(self) -> dict[str, Any]:
        return {} if self.epsilon is None else {"clip": self.clip, "epsilon_step": self.epsilon / self.steps}

    @property
    def description(self) -> str:
        if self.epsilon is None:
            return ""
        return (
            f"; differentially private: each silo's dataset version paid epsilon={plain(self.epsilon)}, delta=0 "
            f"(Laplace noise on L1-clipped gradient sums, clip {plain(self.clip)}, {self.steps} steps; {COMPOSITION})"
        )

    def space(self, x: np.ndarray) -> np.ndarray:
        """Rows in the space the parameters live in: raw, or the public bounds' [0, 1]."""
        return x if self.epsilon is None else unit(x, self.lo, self.hi)

    def model(self, linear: Any, features: list[str]) -> Any:
        """The registered model: the linear one, behind the bounds' scaler when private."""
        if self.epsilon is None:
            return linear
        import numpy as np
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import MinMaxScaler

        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        scaler = MinMaxScaler(clip=True)  # fitted from the public bounds, never from rows
        scaler.data_min_, scaler.data_max_, scaler.data_range_ = self.lo.copy(), self.hi.copy(), span
        scaler.scale_, scaler.min_ = 1.0 / span, -self.lo / span
        scaler.n_features_in_, scaler.feature_names_in_ = len(features), np.array(features, dtype=object)
        scaler.n_samples_seen_ = 0
        del linear.feature_names_in_  # the scaler takes the named columns and hands the model an array
        return Pipeline([("bounds", scaler), ("model", linear)])

    def pay(self, ctx: Context, client: Client, run_id: str) -> None:
        """Record every silo's spend before training; a refusal ends here with nothing trained."""
        if self.epsilon is None:
            return
        import uuid

        from keel.core.privacy import PrivacySpend

        mechanism = "federated-laplace-gradient"
        for ref in self.refs:
            ctx.store.privacy.spend(
                PrivacySpend(dataset=ref, epsilon=self.epsilon, delta=0.0, mechanism=mechanism, run_id=run_id,
                             request_id=uuid.uuid4().hex)
            )  # fmt: skip
        client.set_tags(
            run_id, {"keel.privacy": f"spent epsilon={plain(self.epsilon)}, delta=0 of each of {', '.join(self.refs)}"}
        )


def _private_plan(
    ctx: Context, refs: list[str], features: list[str], epsilon: float | None, bounds: Any, classes: Any, clip: float,
    steps: int,
) -> _PrivatePlan:  # fmt: skip
    """The DP settings checked, and every silo's budget checked (the store decides again, atomically, on spending)."""
    if epsilon is None:
        return _PrivatePlan()
    import numpy as np

    from keel.core.errors import BudgetExceeded, NotFound
    from keel.core.privacy import check_budget

    eps, _ = check_budget(epsilon, 0.0)
    if not isinstance(bounds, Mapping) or any(f not in bounds for f in features):
        missing = [f for f in features if not isinstance(bounds, Mapping) or f not in bounds]
        raise InvalidArgument.for_field("bounds", missing[:3], "public (low, high) bounds for every feature (with epsilon)")
    try:
        lo = np.array([float(bounds[f][0]) for f in features])
        hi = np.array([float(bounds[f][1]) for f in features])
    except (TypeError, ValueError, IndexError, KeyError):
        raise InvalidArgument.for_field("bounds", dict(bounds), "a (low, high) pair of numbers per feature") from None
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (hi > lo).all()):
        raise InvalidArgument.for_field("bounds", dict(bounds), "finite pairs with low < high")
    if classes is None or isinstance(classes, str) or len(set(map(repr, classes))) < 2:
        raise InvalidArgument.for_field("classes", classes, "the list of labels (two or more) when training with epsilon")
    if not _finite(clip) or clip <= 0:
        raise InvalidArgument.for_field("clip", clip, "a positive number")
    for ref in refs:
        budget = ctx.store.privacy.get_budget(ref)
        if budget is None:
            raise NotFound(f"dataset {ref} has no privacy budget: set one first (keel privacy budget {ref} --epsilon E)")
        if eps > budget.left[0] + 1e-12:
            raise BudgetExceeded(
                f"privacy budget of {ref} exceeded: budget epsilon={plain(budget.epsilon)}, spent "
                f"epsilon={plain(budget.spent_epsilon)}, asked epsilon={plain(eps)}"
            )
    labels = sorted({repr(plain_label(c)): plain_label(c) for c in classes}.values(), key=label_order)
    params = {"privacy.epsilon": eps, "privacy.delta": 0.0, "privacy.mechanism": "federated-laplace-gradient",
              "privacy.clip": float(clip), "privacy.composition": COMPOSITION}  # fmt: skip
    return _PrivatePlan(eps, refs, lo, hi, labels, float(clip), steps, params)


def _initial(n_classes: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    k = 1 if n_classes == 2 else n_classes
    return np.zeros((k, n_features)), np.zeros(k)


def _round(
    client: Client, silos: Silos, result: FederatedResult, r: int, coef: np.ndarray, intercept: np.ndarray,
    aggregation: str, trim: float, test: Any, fields: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One round as a child run: broadcast, local training, aggregation, global metrics."""
    import numpy as np

    parent = result.run_id
    run = client.create_run(
        parent_run_id=parent, name=f"round {r}", capture_code=False, params={"round": r, "participants": result.silos},
    )  # fmt: skip
    sent = 0

    def counted(direction: str, silo: int, data: bytes) -> None:
        nonlocal sent
        sent += len(data)
        if outer is not None:
            outer(direction, silo, data)

    outer, silos.hook = silos.hook, counted
    try:
        updates = silos.exchange(
            [Message("train", {**fields, "run_id": run.id}, {"coef": coef, "intercept": intercept}) for _ in silos.links]
        )
    finally:
        silos.hook = outer
    rows = []
    for i, update in enumerate(updates):
        c, b = update.arrays.get("coef"), update.arrays.get("intercept")
        if c is None or b is None or c.shape != coef.shape or b.shape != intercept.shape:
            raise FederatedError(f"silo {i} sent parameters of the wrong shape")
        if not (np.isfinite(c).all() and np.isfinite(b).all()):
            raise FederatedError(f"silo {i} sent parameters that are not finite (lower the learning rate)")
        rows.append(int(update.fields["rows"]))
    coef = aggregate([u.arrays["coef"] for u in updates], rows, aggregation, trim)
    intercept = aggregate([u.arrays["intercept"] for u in updates], rows, aggregation, trim)
    metrics: dict[str, float] = {}
    if test is not None:
        lookup = {repr(c): i for i, c in enumerate(result.classes)}
        known = np.array([repr(plain_label(v)) in lookup for v in test[1].tolist()])
        y = np.array([lookup.get(repr(plain_label(v)), -1) for v in test[1].tolist()])
        measured = scores(test[0][known], y[known], coef, intercept)
        metrics = {f"holdout.{k}": v for k, v in measured.items()}
    client.log_metrics(run.id, {**metrics, "rows": float(sum(rows)), "bytes_exchanged": float(sent)})
    client.end_run(run.id, RunStatus.FINISHED)
    if metrics:
        client.log_metrics(parent, metrics, step=r)
    result.rounds.append(RoundRecord(r, run.id, list(result.silos), sum(rows), metrics, sent))
    return coef, intercept
