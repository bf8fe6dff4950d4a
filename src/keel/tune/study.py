"""Hyper-parameter optimisation on Optuna, with every trial a child run in keel's tracking.

The Optuna study lives in memory; keel's store is the persistent record. A study with the
same name in the same experiment is rebuilt from its trial runs, so a restarted process
goes on where the last one stopped: ``n_trials`` is the number of trials to run now, as in
``optuna.Study.optimize``, on top of the earlier ones (the ``keel.tune`` logger says so).
This avoids Optuna's own RDB storage and its cost per trial.

A study whose every trial failed raises ``StudyFailed`` with the first trial's error: a
``best_value`` of ``None`` is not an answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core.entities import Run, RunKind, RunStatus, TrialState
from keel.core.errors import InvalidArgument, MissingExtra, NotFound, StudyFailed
from keel.core.numbers import short
from keel.core.ranking import DIRECTIONS
from keel.tune.space import Distribution, check_space
from keel.tune.sweep import run_trials_on_executor
from keel.tune.trials import Trial, TrialRecord, best_trial, finish_trial, run_inline, start_trial

if TYPE_CHECKING:
    from keel.tracking.client import Client

log = logging.getLogger("keel.tune")
SAMPLERS = ("tpe", "random", "cmaes", "qmc")
PRUNERS = ("median", "percentile", "hyperband", "none")


@dataclass
class StudyResult:
    """What ``optimize`` returns: the study's run, metric and direction, every trial (on a resumed study the
    earlier ones first), and the Optuna study; ``best``, ``best_params`` and ``best_value`` pick the winner."""

    name: str
    run_id: str
    metric: str
    direction: str
    trials: list[TrialRecord] = field(default_factory=list)
    study: Any = field(default=None, repr=False)
    resumed_trials: int = 0  # the earlier trials this call found in the store; ``trials`` holds them first

    @property
    def new_trials(self) -> list[TrialRecord]:
        """The trials this call ran."""
        return self.trials[self.resumed_trials :]

    @property
    def best(self) -> TrialRecord | None:
        """The complete trial with the best value (the first on ties); None when no trial completed."""
        return best_trial(self.trials, self.direction)

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's params (``{}`` when no trial completed)."""
        return dict(self.best.params) if self.best else {}

    @property
    def best_value(self) -> float | None:
        """The best trial's value of the metric (None when no trial completed)."""
        return self.best.value if self.best else None


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtra("optuna", "tune") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _sampler(optuna: Any, sampler: Any, seed: int | None) -> Any:
    if not isinstance(sampler, str):
        return sampler
    factories = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }
    if sampler not in factories:
        raise InvalidArgument.for_field("sampler", sampler, f"one of {', '.join(SAMPLERS)} or an Optuna sampler")
    return factories[sampler]()


def _pruner(optuna: Any, pruner: Any) -> Any:
    if not isinstance(pruner, str):
        return pruner
    factories = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        "percentile": lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=3, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }
    if pruner not in factories:
        raise InvalidArgument.for_field("pruner", pruner, f"one of {', '.join(PRUNERS)} or an Optuna pruner")
    return factories[pruner]()


def _previous(client: Client, experiment: str, name: str) -> tuple[Run | None, list[TrialRecord]]:
    """The parent run of an earlier study of this name, and its finished trials."""
    try:
        experiment_id = client.store.get_experiment_by_name(experiment).id
    except NotFound:  # no such experiment yet: a new study
        return None, []
    parent = client.store.find_latest_run(experiment_id, kind=RunKind.STUDY, name=name)
    if parent is None:
        return None, []
    metric = parent.tags.get("keel.metric", "value")
    records = []
    for run in client.store.list_child_runs(parent.id, kind=RunKind.TRIAL):
        trial = run.trial
        if trial is None or trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue  # running when the process died, or failed: asked again
        complete = trial.state is TrialState.COMPLETE
        history = {} if complete else {m.step: m.value for m in client.get_metric_history(run.id, metric)}
        value = trial.value if complete else None
        records.append(TrialRecord(trial.number, run.id, dict(trial.params), trial.state.value, value, intermediate=history))
    return parent, sorted(records, key=lambda r: r.number)


def optimize(
    objective: Callable[[Trial], Any],
    space: dict[str, Distribution],
    *,
    n_trials: int = 20,
    metric: str = "value",
    direction: str = "maximize",
    sampler: Any = "tpe",
    pruner: Any = "median",
    executor: str = "inline",
    parallel: int | None = None,
    experiment: str | None = None,
    name: str = "study",
    seed: int | None = None,
) -> StudyResult:
    """Optimise ``objective(trial)`` over ``space`` with Optuna; each trial is a child run.

    ``trial.params`` holds the suggested values; ``trial.report(value, step)`` logs the metric
    and feeds the pruner (``inline`` executor). ``executor="process"`` or ``"ray"`` runs
    ``parallel`` trials at once (default: the executor's width); pruning needs ``inline``.
    ``n_trials`` trials run now; a study of this ``name`` found in the experiment is resumed
    (its trials inform the sampler and count in ``trials``), which the ``keel.tune`` logger
    reports. Raises ``StudyFailed`` when every trial failed. The study run gets ``best_<metric>``,
    the best trial and an HTML report with the optimisation history and parameter importances.
    """
    from keel.pipelines.executors import make_executor
    from keel.tracking.fluent import get_client
    from keel.tune.report import study_html

    optuna = _optuna()
    space = check_space(space)
    if direction not in DIRECTIONS:
        raise InvalidArgument.for_field("direction", direction, "'maximize' or 'minimize'")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise InvalidArgument.for_field("n_trials", n_trials, "a positive integer")
    client = get_client()
    experiment = experiment or client.settings.experiment
    distributions = {k: d.to_optuna() for k, d in space.items()}
    study = optuna.create_study(direction=direction, sampler=_sampler(optuna, sampler, seed), pruner=_pruner(optuna, pruner))
    parent, old = _previous(client, experiment, name)
    for record in old:
        if set(record.params) != set(space):
            raise InvalidArgument(
                f"study {name!r} was run with parameters {sorted(record.params)}, not {sorted(space)}; use another name"
            )
        state = optuna.trial.TrialState.COMPLETE if record.state == "complete" else optuna.trial.TrialState.PRUNED
        study.add_trial(optuna.trial.create_trial(
            params=record.params, distributions=distributions, value=record.value if record.state == "complete" else None,
            state=state, intermediate_values=record.intermediate,
        ))  # fmt: skip
    if parent is None:
        parent = client.create_run(
            experiment, name,
            tags={"keel.kind": "study", "keel.metric": metric, "keel.direction": direction}, kind=RunKind.STUDY,
            params={"sampler": sampler if isinstance(sampler, str) else type(sampler).__name__, "space": str(sorted(space))},
        )  # fmt: skip
    result = StudyResult(name, parent.id, metric, direction, list(old), study, len(old))
    remaining = n_trials
    if old:  # a surprise when the name was reused by accident: say it, with what to do
        best = result.best
        log.warning(
            "study %r (experiment %r) resumes run %s: %d earlier trials%s; running %d more. Another name starts a new study.",
            name, experiment, parent.id[:12], len(old),
            f" (best {metric} {short(best.value)})" if best is not None and best.value is not None else "", n_trials,
        )  # fmt: skip
    runner = make_executor(executor, client)
    next_number = max((r.number for r in old), default=-1) + 1
    try:
        if runner.name == "inline":
            for _ in range(remaining):
                ask = study.ask(distributions)
                number = next_number
                next_number += 1
                run_id = start_trial(client, parent, number, ask.params, "trial").id
                record = run_inline(client, objective, number, dict(ask.params), run_id, metric, ask)
                _tell(optuna, study, ask, record)
                finish_trial(client, record, metric)
                result.trials.append(record)
        else:
            width = parallel or runner.parallelism
            while remaining > 0:
                batch = []
                for _ in range(min(width, remaining)):
                    ask = study.ask(distributions)
                    run_id = start_trial(client, parent, next_number, ask.params, "trial").id
                    batch.append((ask, (next_number, dict(ask.params), run_id)))
                    next_number += 1
                records = run_trials_on_executor(client, runner, objective, [job for _, job in batch], metric)
                for (ask, _), record in zip(batch, records, strict=True):
                    _tell(optuna, study, ask, record)
                    finish_trial(client, record, metric)
                    result.trials.append(record)
                remaining -= len(batch)
    finally:
        runner.shutdown()
    _raise_if_all_failed(client, result, parent.id)
    best = result.best
    complete = [t for t in result.trials if t.state == "complete"]
    client.log_metrics(
        parent.id, {"trials_complete": len(complete), "trials_pruned": sum(t.state == "pruned" for t in result.trials)}
    )
    if best is not None:
        client.log_metrics(parent.id, {f"best_{metric}": best.value or 0.0})
        client.set_tags(parent.id, {"best_trial": best.run_id, "best_params": json.dumps(best.params, default=str)})
    importances = _importances(optuna, study) if len(complete) >= 2 else {}
    client.log_text(parent.id, study_html(result.trials, metric, direction, importances, title=f"study {name}"), "study.html")
    current = client.get_run(parent.id)
    if current.status in (RunStatus.RUNNING, RunStatus.KILLED) and current.end_time is None:
        client.end_run(parent.id, RunStatus.FINISHED)
    return result


def _raise_if_all_failed(client: Client, result: StudyResult, run_id: str) -> None:
    """Every trial run now failed (and none before completed): end the study run as failed and raise with the
    first trial's error, which is usually the bug in the objective."""
    new = result.new_trials
    if not new or any(t.state != "failed" for t in new) or any(t.state == "complete" for t in result.trials):
        return
    first = min(new, key=lambda t: t.number)
    message = (
        f"all {len(new)} trials of study {result.name!r} failed; the first (trial {first.number}, run {first.run_id}): "
        f"{first.error}"
    )
    client.set_tags(run_id, {"keel.error": message[:8000]})
    client.end_run(run_id, RunStatus.FAILED)
    raise StudyFailed(message, run_id=run_id, error=first.error, result=result)


def _tell(optuna: Any, study: Any, ask: Any, record: TrialRecord) -> None:
    state = optuna.trial.TrialState
    if record.state == "complete":
        study.tell(ask, record.value)
    elif record.state == "pruned":
        study.tell(ask, state=state.PRUNED)
    else:
        study.tell(ask, state=state.FAIL)


def _importances(optuna: Any, study: Any) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError, ImportError):
        return {}  # e.g. every trial had the same params
