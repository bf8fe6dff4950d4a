"""Issue 13, helper 5: a study that failed says so, and ``n_trials`` means the trials to run now."""

from __future__ import annotations

import logging

import pytest

import keel
import keel.tune as tune
from keel.core.entities import RunStatus
from keel.core.errors import StudyFailed


def broken(trial: tune.Trial) -> float:
    raise KeyError(f"no column 'x{trial.number}'")


def quadratic(trial: tune.Trial) -> float:
    return -((trial["x"] - 2.0) ** 2)


def test_a_study_whose_every_trial_failed_raises_with_the_first_error() -> None:
    with pytest.raises(StudyFailed) as caught:
        tune.optimize(broken, {"x": tune.uniform(0, 1)}, n_trials=3, name="broken", pruner="none")
    err = caught.value
    assert err.message.startswith("all 3 trials of study 'broken' failed; the first (trial 0, run ")
    assert err.message.endswith("KeyError: \"no column 'x0'\"") and err.error == "KeyError: \"no column 'x0'\""
    study = keel.get_client().get_run(err.run_id)
    assert study.status is RunStatus.FAILED and study.tags["keel.error"] == err.message
    assert len(err.result.trials) == 3 and err.result.best_value is None


def test_a_sweep_whose_every_trial_failed_raises_with_the_first_error() -> None:
    with pytest.raises(StudyFailed, match=r"all 2 trials of sweep 'bad' failed; the first \(trial 0, .*no column 'x0'"):
        tune.sweep(broken, [{"x": 1}, {"x": 2}], name="bad")


def test_some_failed_trials_are_results_not_a_failure() -> None:
    def flaky(trial: tune.Trial) -> float:
        if trial.number == 0:
            raise RuntimeError("diverged")
        return quadratic(trial)

    result = tune.optimize(flaky, {"x": tune.uniform(0, 4)}, n_trials=3, name="flaky", seed=0, pruner="none")
    assert [t.state for t in result.trials] == ["failed", "complete", "complete"] and result.best_value is not None


def test_n_trials_counts_the_trials_to_run_now_and_a_resume_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    first = tune.optimize(quadratic, {"x": tune.uniform(-5, 5)}, n_trials=12, name="again", seed=0, pruner="none")
    assert len(first.trials) == 12 and first.resumed_trials == 0 and len(first.new_trials) == 12
    with caplog.at_level(logging.WARNING, logger="keel.tune"):
        again = tune.optimize(quadratic, {"x": tune.uniform(-5, 5)}, n_trials=3, name="again", seed=1, pruner="none")
    assert again.run_id == first.run_id and again.resumed_trials == 12
    assert len(again.new_trials) == 3 and [t.number for t in again.new_trials] == [12, 13, 14] and len(again.trials) == 15
    assert len(list(keel.get_client().iter_runs(filter=f"parent_run_id = '{first.run_id}'"))) == 15
    said = [r.getMessage() for r in caplog.records if r.name == "keel.tune"]
    assert len(said) == 1 and said[0].startswith(
        f"study 'again' (experiment 'default') resumes run {first.run_id[:12]}: 12 earlier trials"
    )
    assert "running 3 more" in said[0]
