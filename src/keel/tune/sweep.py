"""Parallel training experiments: the same objective over a list of configurations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.core.entities import RunKind, RunStatus
from keel.core.errors import InvalidArgument, StudyFailed
from keel.core.ranking import DIRECTIONS
from keel.tune.trials import TrialRecord, _remote_entry, best_trial, finish_trial, run_inline, split_result, start_trial

if TYPE_CHECKING:
    from keel.pipelines.executors import Executor
    from keel.tracking.client import Client


@dataclass
class SweepResult:
    """What ``sweep`` returns: the sweep's run, metric and direction, and one ``TrialRecord`` per configuration."""

    run_id: str
    metric: str
    direction: str
    trials: list[TrialRecord] = field(default_factory=list)

    @property
    def best(self) -> TrialRecord | None:
        """The complete trial with the best value (the first on ties); None when no trial completed."""
        return best_trial(self.trials, self.direction)


def run_trials_on_executor(
    client: Client, executor: Executor, objective: Callable[..., Any], jobs: list[tuple[int, dict[str, Any], str]], metric: str
) -> list[TrialRecord]:
    """Run trials as tasks (processes, Ray); results come back as stored outputs."""
    from keel.pipelines.executors import StepTask
    from keel.pipelines.values import load_output

    store, artifacts = client.context.store_uri, client.context.artifacts_url  # what the workers open
    futures = {}
    for number, params, run_id in jobs:
        task = StepTask(
            f"trial-{number}", "trial", _remote_entry, (objective, number, params, metric), {}, run_id, store, artifacts
        )
        futures[executor.submit(task)] = (number, params, run_id)
    records = []
    while futures:
        done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
        for future in done:
            number, params, run_id = futures.pop(future)
            outcome = future.result()
            if outcome.ok and outcome.output is not None:
                try:
                    returned = load_output(outcome.output, client.artifacts, client.context)
                    value, metrics = split_result(returned["result"], metric)
                    records.append(
                        TrialRecord(number, run_id, params, "complete", value, metrics, last_step=returned["last_step"])
                    )
                except InvalidArgument as exc:
                    records.append(TrialRecord(number, run_id, params, "failed", error=exc.message))
            else:
                pruned = "TrialPruned" in outcome.error
                if not pruned:
                    client.log_text(run_id, outcome.traceback, "traceback.txt")
                records.append(TrialRecord(number, run_id, params, "pruned" if pruned else "failed", error=outcome.error))
    return sorted(records, key=lambda r: r.number)


def sweep(
    objective: Callable[..., Any],
    configs: Sequence[dict[str, Any]],
    *,
    metric: str = "score",
    direction: str = "maximize",
    executor: str = "inline",
    experiment: str | None = None,
    name: str = "sweep",
) -> SweepResult:
    """Run ``objective(trial)`` for each configuration (``trial.params``), in parallel on ``executor``.

    Each trial is a child run of one sweep run with its params and the metrics the
    objective returns (a number, or a mapping that includes ``metric``) or logs. The sweep
    run gets the best trial (tag ``best_trial``, metric ``best_<metric>``) and an HTML table.
    Raises ``StudyFailed`` with the first trial's error when every trial failed.
    """
    from keel.pipelines.executors import make_executor
    from keel.tracking.fluent import get_client
    from keel.tune.report import study_html

    if direction not in DIRECTIONS:
        raise InvalidArgument.for_field("direction", direction, "'maximize' or 'minimize'")
    configs = list(configs)
    if not configs or not all(isinstance(c, dict) for c in configs):
        raise InvalidArgument.for_field("configs", configs[:3], "a non-empty list of parameter mappings")
    client = get_client()
    runner = make_executor(executor, client)
    parent = client.create_run(
        experiment, name, tags={"keel.kind": "sweep", "keel.metric": metric, "keel.direction": direction}, kind=RunKind.SWEEP,
        params={"trials": len(configs), "executor": runner.name},
    )  # fmt: skip
    result = SweepResult(parent.id, metric, direction)
    try:
        jobs = [(i, dict(c), start_trial(client, parent, i, dict(c), "trial").id) for i, c in enumerate(configs)]
        if runner.name == "inline":
            result.trials = [run_inline(client, objective, n, p, rid, metric) for n, p, rid in jobs]
        else:
            result.trials = run_trials_on_executor(client, runner, objective, jobs, metric)
        for record in result.trials:
            finish_trial(client, record, metric)
    finally:
        runner.shutdown()
    best = result.best
    if best is not None:
        client.log_metrics(parent.id, {f"best_{metric}": best.value or 0.0})
        client.set_tags(parent.id, {"best_trial": best.run_id, "best_params": str(best.params)})
    client.log_text(parent.id, study_html(result.trials, metric, direction, title=f"sweep {name}"), "trials.html")
    failed = [t for t in result.trials if t.state == "failed"]
    if failed and len(failed) == len(result.trials):  # nothing to pick from: the first error is usually the bug
        first = failed[0]
        message = (
            f"all {len(failed)} trials of sweep {name!r} failed; the first (trial {first.number}, run {first.run_id}): "
            f"{first.error}"
        )
        client.set_tags(parent.id, {"keel.error": message[:8000]})
        client.end_run(parent.id, RunStatus.FAILED)
        raise StudyFailed(message, run_id=parent.id, error=first.error, result=result)
    client.end_run(parent.id, RunStatus.FINISHED)
    return result
