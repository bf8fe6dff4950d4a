"""Sweeps and HPO: trials as child runs, pruning, parallel executors, resuming a study, reports."""

from __future__ import annotations

import pytest

import keel
import keel.tune as tune
from keel.core.entities import RunStatus
from keel.core.errors import InvalidArgument


def quadratic(trial: tune.Trial) -> float:
    return -((trial["x"] - 2.0) ** 2)


def test_study_finds_the_optimum_and_records_every_trial() -> None:
    result = tune.optimize(quadratic, {"x": tune.uniform(-5, 5)}, n_trials=30, name="quad", seed=0, pruner="none")
    assert len(result.trials) == 30 and all(t.state == "complete" for t in result.trials)
    assert result.best is not None and result.best_value is not None
    assert abs(result.best_params["x"] - 2.0) < 0.5 and result.best_value > -0.25
    client = keel.get_client()
    study = client.get_run(result.run_id)
    assert study.tags["keel.kind"] == "study" and study.tags["best_trial"] == result.best.run_id
    assert study.metrics["best_value"].value == result.best_value and study.status is RunStatus.FINISHED
    trials = list(client.iter_runs(filter=f"parent_run_id = '{result.run_id}'"))
    assert len(trials) == 30
    best = client.get_run(result.best.run_id)
    assert float(best.params["x"]) == pytest.approx(result.best_params["x"]) and best.metrics["value"].value == result.best_value
    page = client.read_artifact(result.run_id, "study.html").decode()
    assert ("optimisation history" in page and "parameter importance" not in page) or "<svg" in page


def test_pruning_is_fed_by_reported_metrics() -> None:
    def curve(trial: tune.Trial) -> float:
        value = 0.0
        for step in range(10):
            value = -((trial["x"] - 2.0) ** 2) - (10 - step) * 0.01
            trial.report(value, step)
            if trial.should_prune():
                trial.prune()
        return value

    result = tune.optimize(curve, {"x": tune.uniform(-10, 10)}, n_trials=25, name="pruned", seed=1, pruner="median")
    states = [t.state for t in result.trials]
    assert states.count("pruned") >= 5 and states.count("complete") >= 5
    client = keel.get_client()
    pruned = next(t for t in result.trials if t.state == "pruned")
    run = client.get_run(pruned.run_id)
    assert run.status is RunStatus.KILLED and run.trial is not None and run.trial.state == "pruned"
    assert len(client.get_metric_history(pruned.run_id, "value")) < 10  # stopped early
    complete = next(t for t in result.trials if t.state == "complete")
    history = client.get_metric_history(complete.run_id, "value")
    assert [m.step for m in history] == list(range(11))  # ten reports, then the final value after them


def test_a_study_resumes_where_it_stopped() -> None:
    first = tune.optimize(quadratic, {"x": tune.uniform(-5, 5)}, n_trials=8, name="resumable", seed=3, pruner="none")
    # n_trials counts the trials to run now (as Optuna's): 4 more on top of the 8 found in the store
    again = tune.optimize(quadratic, {"x": tune.uniform(-5, 5)}, n_trials=4, name="resumable", seed=4, pruner="none")
    assert again.run_id == first.run_id and again.resumed_trials == 8 and len(again.trials) == 12
    assert sorted(t.number for t in again.trials) == list(range(12))
    assert again.best_value is not None and first.best_value is not None and again.best_value >= first.best_value
    assert len(list(keel.get_client().iter_runs(filter=f"parent_run_id = '{first.run_id}'"))) == 12
    with pytest.raises(InvalidArgument, match="was run with parameters"):
        tune.optimize(quadratic, {"y": tune.uniform(0, 1)}, n_trials=14, name="resumable")


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_parallel_trials_on_processes_and_ray(executor: str, request: pytest.FixtureRequest) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_local")
    result = tune.optimize(quadratic, {"x": tune.uniform(-5, 5)}, n_trials=6, name=f"par-{executor}", executor=executor, seed=0)
    assert len(result.trials) == 6 and all(t.state == "complete" for t in result.trials)
    sweep = tune.sweep(lambda t: {"score": t["C"] * 2, "other": 1.0}, tune.grid({"C": [1, 2, 3]}), executor=executor)
    assert sweep.best is not None and sweep.best.params == {"C": 3} and sweep.best.value == 6.0
    parent = keel.get_client().get_run(sweep.run_id)
    assert parent.metrics["best_score"].value == 6.0 and parent.tags["best_trial"] == sweep.best.run_id


def test_failing_trials_do_not_stop_the_sweep() -> None:
    def sometimes(trial: tune.Trial) -> float:
        if trial["C"] == 2:
            raise RuntimeError("diverged")
        return float(trial["C"])

    result = tune.sweep(sometimes, tune.grid({"C": [1, 2, 3]}), metric="score")
    assert [t.state for t in result.trials] == ["complete", "failed", "complete"]
    assert result.best is not None and result.best.value == 3.0
    failed = keel.get_client().get_run(result.trials[1].run_id)
    assert failed.status is RunStatus.FAILED and failed.tags["keel.error"] == "RuntimeError: diverged"


def test_spaces_and_bad_input() -> None:
    assert len(tune.grid({"a": [1, 2], "b": ["x", "y", "z"]})) == 6
    configs = tune.random_configs({"lr": tune.loguniform(1e-4, 1e-1), "n": tune.intrange(1, 5)}, 10, seed=0)
    assert all(1e-4 <= c["lr"] <= 1e-1 and 1 <= c["n"] <= 5 for c in configs)
    with pytest.raises(InvalidArgument, match="search space must be a non-empty mapping"):
        tune.optimize(quadratic, {}, n_trials=3)
    with pytest.raises(InvalidArgument, match="search space 'x' must be a distribution"):
        tune.optimize(quadratic, {"x": [1, 2]}, n_trials=3)  # type: ignore[dict-item]  # not a distribution, on purpose
    with pytest.raises(InvalidArgument, match="loguniform low must be a positive number"):
        tune.loguniform(0, 1)
    with pytest.raises(InvalidArgument, match="sampler must be one of tpe"):
        tune.optimize(quadratic, {"x": tune.uniform(0, 1)}, n_trials=2, sampler="magic")
    with pytest.raises(InvalidArgument, match="configs must be a non-empty list"):
        tune.sweep(quadratic, [])
    with pytest.raises(InvalidArgument, match="executor must be one of"):
        tune.sweep(quadratic, [{"x": 1}], executor="cloud")
