"""Trials: one child run each, executed in process (with pruning) or as tasks on an executor."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core import ranking
from keel.core.entities import Run, RunKind, RunStatus, TrialInfo, TrialState
from keel.core.errors import InvalidArgument
from keel.core.errors import TrialPruned as TrialPruned  # defined in the one error tree

if TYPE_CHECKING:
    from keel.tracking.client import Client


class Trial:
    """What an objective receives: the trial's ``params``, and ``report``/``should_prune`` for pruning.

    ``report(value, step)`` logs ``value`` as the study's metric at ``step`` on the trial's run
    and feeds it to the pruner.
    """

    def __init__(
        self, number: int, params: dict[str, Any], run_id: str, client: Client, metric: str, optuna_trial: Any = None
    ) -> None:
        self.number = number
        self.params = params
        self.run_id = run_id
        self.metric = metric
        self._client = client
        self._optuna = optuna_trial
        self.last_step: int | None = None

    def report(self, value: float, step: int) -> None:
        """Log ``value`` as the study's metric at ``step`` on the trial's run, and give it to the pruner."""
        self._client.log_metric(self.run_id, self.metric, float(value), step=step)
        self.last_step = step if self.last_step is None else max(self.last_step, step)
        if self._optuna is not None:
            self._optuna.report(float(value), step)

    def should_prune(self) -> bool:
        """Whether the pruner would stop this trial now (always False outside an Optuna study, e.g. a sweep)."""
        return bool(self._optuna is not None and self._optuna.should_prune())

    def prune(self) -> None:
        """Stop this trial as pruned: raises ``TrialPruned``, which the study records as a pruned trial.
        ``if trial.should_prune(): trial.prune()``."""
        raise TrialPruned(f"trial {self.number} pruned")

    def __getitem__(self, name: str) -> Any:
        return self.params[name]


@dataclass
class TrialRecord:
    """A trial as it ended: number, run, params, state (``complete``, ``pruned`` or ``failed``), the metric's
    value and the other metrics returned, the values reported by step, and the error when it failed."""

    number: int
    run_id: str
    params: dict[str, Any]
    state: str  # "complete", "pruned", "failed"
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    intermediate: dict[int, float] = field(default_factory=dict)
    last_step: int | None = None  # the last step the objective reported; the final value goes after it


def split_result(result: Any, metric: str) -> tuple[float, dict[str, float]]:
    """An objective's return: a number, or a mapping of metrics that includes ``metric``."""
    if isinstance(result, dict):
        if metric not in result:
            raise InvalidArgument(f"the objective returned metrics {sorted(result)} without {metric!r}, the metric to optimise")
        metrics = {str(k): float(v) for k, v in result.items()}
        return metrics[metric], metrics
    try:
        value = float(result)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field("objective result", result, f"a number or a mapping that includes {metric!r}") from None
    return value, {metric: value}


def _remote_entry(objective: Callable[[Trial], Any], number: int, params: dict[str, Any], metric: str) -> Any:
    """Runs in a worker with the trial's run active: no pruner here (it lives with the study)."""
    from keel.tracking.fluent import active_run

    run = active_run()
    assert run is not None
    trial = Trial(number, params, run.id, run.client, metric)
    return {"result": objective(trial), "last_step": trial.last_step}


def start_trial(client: Client, parent: Run, number: int, params: dict[str, Any], kind: str = "trial") -> Run:
    """The trial's run: a child of the study (or sweep) run, with its code version and environment. Its number and
    params (as JSON) are its ``Run.trial``, which a study that resumes reads; ``keel.kind`` stays a tag for filters."""
    shown = {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool))}
    asked = json.loads(json.dumps(params, default=str))
    return client.create_run(
        None, f"trial-{number}", parent_run_id=parent.id, params=shown, inherit_from=parent, tags={"keel.kind": kind},
        kind=RunKind.TRIAL, trial=TrialInfo(number, asked),
    )  # fmt: skip


def run_inline(
    client: Client, objective: Callable[[Trial], Any], number: int, params: dict[str, Any], run_id: str, metric: str,
    optuna_trial: Any = None,
) -> TrialRecord:  # fmt: skip
    from keel.tracking.fluent import attach

    trial = Trial(number, params, run_id, client, metric, optuna_trial)
    try:
        with attach(run_id, client):
            outcome = objective(trial)
        value, metrics = split_result(outcome, metric)
    except TrialPruned:
        return TrialRecord(number, run_id, params, "pruned", last_step=trial.last_step)
    except Exception as exc:  # noqa: BLE001 - a failed trial is a result, the study goes on
        client.log_text(run_id, traceback.format_exc(), "traceback.txt")
        return TrialRecord(number, run_id, params, "failed", error=f"{type(exc).__name__}: {exc}")
    return TrialRecord(number, run_id, params, "complete", value, metrics, last_step=trial.last_step)


def finish_trial(client: Client, record: TrialRecord, metric: str) -> None:
    if record.state == "complete" and record.metrics:
        step = 0 if record.last_step is None else record.last_step + 1
        client.log_metrics(record.run_id, record.metrics, step=step)
    # the state and the exact value, for a study that resumes: Run.trial (no longer keel.trial_* tags)
    client.store.set_trial_result(record.run_id, TrialState(record.state), record.value)
    if record.error:
        client.set_tags(record.run_id, {"keel.error": record.error[:8000]})
    status = {"complete": RunStatus.FINISHED, "pruned": RunStatus.KILLED, "failed": RunStatus.FAILED}[record.state]
    client.end_run(record.run_id, status)


def best_trial(trials: list[TrialRecord], direction: str) -> TrialRecord | None:
    """The complete trial with the best value (the first, on ties), by ``keel.core.ranking``'s rule."""
    complete = [t for t in trials if t.state == "complete"]
    i = ranking.best_index([t.value for t in complete], direction)
    return complete[i] if i is not None else None


is_better = ranking.is_better  # kept for callers of keel.tune.trials.is_better
