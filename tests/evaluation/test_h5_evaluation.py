"""Issue 13, helper 5: ``log_evaluation`` without a run."""

from __future__ import annotations

import pytest

import keel
from keel.core.errors import InvalidArgument
from keel.evaluation import log_evaluation


def test_log_evaluation_without_a_run_outside_any_run_names_the_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        log_evaluation(None, [0, 1], y_score=[0.2, 0.9])
    assert caught.value.message == ("run must be a run (keel.start_run() as run), or None inside an active run; got None")
    with pytest.raises(InvalidArgument, match=r"run must be a run .*got 'abc'"):
        log_evaluation("abc", [0, 1], y_score=[0.2, 0.9])


def test_log_evaluation_with_none_logs_on_the_active_run() -> None:
    with keel.start_run(experiment="h5-eval") as run:
        metrics = log_evaluation(None, [0, 1, 1, 0], y_score=[0.1, 0.8, 0.7, 0.4], prefix="val_")
    stored = keel.get_client().get_run(run.id)
    assert stored.metrics["val_roc_auc"].value == metrics["roc_auc"] == 1.0
    assert "val_evaluation.html" in {a.path for a in keel.get_client().store.list_artifacts(run.id)}
