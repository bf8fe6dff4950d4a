"""keel.autolog() for scikit-learn (issue 13): params, training metrics, the model with its signature, the dataset;
one run per outermost fit; nothing patched unless asked; the user's errors unchanged; logging never breaks a fit."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, r2_score, roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import all_estimators

import keel
from keel.autologging import AutologWarning
from keel.core.entities import RunStatus
from keel.core.errors import InvalidArgument
from keel.core.validation import param_to_str
from keel.testing.cli import keel_cmd


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def _fit_owners() -> dict[type, object]:
    """Each class defining the fit some scikit-learn estimator uses, with the function there now."""
    owners = {}
    for _name, cls in all_estimators():
        owner = next(c for c in cls.__mro__ if "fit" in c.__dict__)
        owners[owner] = owner.__dict__["fit"]
    return owners


def test_import_keel_patches_and_imports_nothing() -> None:
    code = "import sys, keel; keel.autolog; print(sorted(m for m in ('sklearn', 'xgboost', 'lightgbm') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_nothing_is_patched_before_autolog_and_everything_is_restored_after() -> None:
    before = _fit_owners()
    assert not any(hasattr(fit, "__keel_autolog__") for fit in before.values())
    assert set(keel.autolog(frameworks=["sklearn"])) == {"sklearn"}
    during = _fit_owners()
    assert all(during[owner].__wrapped__ is fit for owner, fit in before.items())  # type: ignore[attr-defined]
    assert RandomForestClassifier.fit.__keel_autolog__ == "sklearn"  # type: ignore[attr-defined]  # BaseForest's
    keel.autolog(frameworks=["sklearn"])  # again: replaces, never wraps a wrapper
    assert all(_fit_owners()[owner].__wrapped__ is fit for owner, fit in before.items())  # type: ignore[attr-defined]
    assert keel.autolog(disable=True) == []
    assert all(_fit_owners()[owner] is fit for owner, fit in before.items())


def test_a_classifier_fit_logs_params_metrics_model_signature_and_dataset(cancer, logged) -> None:
    X, y = cancer
    keel.autolog()
    model = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(X, y)
    run = logged.only_run()
    assert run.status is RunStatus.FINISHED
    assert run.tags["keel.autolog"] == "sklearn"
    assert run.tags["keel.estimator"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert run.params == {k: param_to_str(k, v) for k, v in model.get_params().items()}
    proba = model.predict_proba(X)[:, 1]
    metrics = {k: m.value for k, m in run.metrics.items()}
    assert metrics["train_accuracy"] == accuracy_score(y, model.predict(X))
    assert metrics["train_f1"] == f1_score(y, model.predict(X))
    assert metrics["train_roc_auc"] == roc_auc_score(y, proba)
    assert set(metrics) == {"train_accuracy", "train_precision", "train_recall", "train_f1", "train_roc_auc", "train_log_loss"}
    # the model loads back and predicts the same
    assert logged.artifacts(run) == ["model.example.parquet", "model.pkl", "model.signature.json"]
    loaded = logged.model(run)
    assert type(loaded) is RandomForestClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    signature = logged.signature(run)
    assert [c["name"] for c in signature["inputs"]["columns"]] == list(X.columns)
    assert {c["kind"] for c in signature["inputs"]["columns"]} == {"float"}
    assert signature["outputs"]["dtype"] == "integer"
    example = pd.read_parquet(io.BytesIO(logged.artifact(run, "model.example.parquet")))
    pd.testing.assert_frame_equal(example, X.head(5))
    # the training data (features and target) is the run's input
    [version] = logged.inputs(run)
    assert (version.name, version.version, version.row_count) == ("RandomForestClassifier.train", 1, len(X))
    stored = keel.data.get(version.ref, run=False)
    pd.testing.assert_frame_equal(stored, X.assign(target=y.to_numpy()))


def test_refitting_on_the_same_data_reuses_its_dataset_version(cancer, logged) -> None:
    X, y = cancer
    keel.autolog()
    for depth in (2, 3):
        RandomForestClassifier(n_estimators=5, max_depth=depth, random_state=0).fit(X, y)
    first, second = logged.runs()
    assert [v.ref for v in logged.inputs(first)] == [v.ref for v in logged.inputs(second)] == ["RandomForestClassifier.train@1"]
    assert len(keel.data.versions("RandomForestClassifier.train")) == 1


def test_a_regressor_on_arrays_logs_regression_metrics_and_a_tensor_signature(logged) -> None:
    X, y = load_diabetes(return_X_y=True)
    keel.autolog(frameworks="sklearn", log_datasets=True)
    model = Ridge(alpha=0.5).fit(X, y)
    run = logged.only_run()
    pred = model.predict(X)
    metrics = {k: m.value for k, m in run.metrics.items()}
    assert metrics == {
        "train_mae": mean_absolute_error(y, pred),
        "train_rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "train_r2": r2_score(y, pred),
    }
    assert logged.signature(run)["inputs"] == {"type": "tensor", "dtype": "float", "shape": [-1, 10]}
    example = np.load(io.BytesIO(logged.artifact(run, "model.example.npy")))
    np.testing.assert_array_equal(example, X[:5])
    np.testing.assert_array_equal(logged.model(run).predict(X), pred)
    [version] = logged.inputs(run)
    assert [c.name for c in version.schema] == [f"f{i}" for i in range(10)] + ["target"]


def test_a_pipeline_logs_one_run_with_its_steps_params(cancer, logged) -> None:
    X, y = cancer
    keel.autolog()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    run = logged.only_run()  # the scaler's and the classifier's own fits log nothing
    assert run.tags["keel.estimator"] == "sklearn.pipeline.Pipeline"
    assert run.params["logisticregression__C"] == "0.5"
    assert run.params == {k: param_to_str(k, v) for k, v in model.get_params().items()}  # no step logged its own
    assert [v.name for v in logged.inputs(run)] == ["Pipeline.train"]
    assert run.metrics["train_accuracy"].value == accuracy_score(y, model.predict(X))
    assert type(logged.model(run)) is Pipeline


def test_a_grid_search_logs_one_run_with_the_best_params_and_cv_results(cancer, logged) -> None:
    X, y = cancer
    keel.autolog()
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    search = GridSearchCV(pipe, {"logisticregression__C": [0.01, 1.0]}, cv=3).fit(X, y)
    run = logged.only_run()  # 2 candidates x 3 folds + the refit: one run
    assert run.tags["keel.estimator"] == "sklearn.model_selection._search.GridSearchCV"
    assert run.params["cv"] == "3"
    assert run.params["param_grid"] == '{"logisticregression__C": [0.01, 1.0]}'
    assert "estimator__logisticregression__C" not in run.params  # the search's own params, not its estimator's
    assert run.params["best_logisticregression__C"] == str(search.best_params_["logisticregression__C"])
    assert run.metrics["best_cv_score"].value == search.best_score_
    assert run.metrics["train_accuracy"].value == accuracy_score(y, search.predict(X))
    results = pd.read_parquet(io.BytesIO(logged.artifact(run, "cv_results.parquet")))
    assert len(results) == 2
    np.testing.assert_array_equal(results["mean_test_score"], search.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(logged.model(run).predict(X), search.predict(X))


def test_a_fit_inside_an_active_run_logs_into_it(cancer, logged) -> None:
    X, y = cancer
    keel.autolog()
    with keel.start_run(experiment="mine") as mine:
        keel.log_param("note", "by hand")
        RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
        assert keel.get_client().get_run(mine.id).status is RunStatus.RUNNING  # autolog did not end it
    run = logged.only_run()
    assert run.id == mine.id and run.params["note"] == "by hand" and run.params["n_estimators"] == "5"
    assert "train_accuracy" in run.metrics


def test_the_fit_error_propagates_unchanged_and_the_run_it_started_fails(cancer, logged) -> None:
    X, y = cancer
    bad = X.assign(**{"mean radius": np.nan})
    with pytest.raises(ValueError) as plain:
        LogisticRegression().fit(bad, y)
    keel.autolog()
    with pytest.raises(ValueError) as patched:
        LogisticRegression().fit(bad, y)
    assert type(patched.value) is type(plain.value) and str(patched.value) == str(plain.value)
    run = logged.only_run()
    assert run.status is RunStatus.FAILED
    assert run.tags["keel.error"].startswith("ValueError: Input X contains NaN")


def test_a_logging_failure_warns_once_and_the_fit_still_returns(cancer, logged) -> None:
    X, y = cancer
    keel.autolog()
    with keel.start_run() as run:
        keel.log_param("max_depth", "taken")  # params are immutable: autolog's max_depth=3 conflicts
        with pytest.warns(AutologWarning, match="could not log the sklearn fit"):
            model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
        assert model.predict(X).shape == (len(X),)  # fitted, and returned
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second failure is silent
            RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    assert logged.only_run().id == run.id


def test_frameworks_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="frameworks"):
        keel.autolog(frameworks=["torch"])
    with pytest.raises(InvalidArgument, match="frameworks"):
        keel.autolog(frameworks=[])
    assert not hasattr(RandomForestClassifier.fit, "__keel_autolog__")  # nothing patched on the way


def test_keel_models_register_takes_the_logged_model_with_its_signature_and_data(cancer, logged, tmp_path: Path) -> None:
    X, y = cancer
    keel.autolog()
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    run = logged.only_run()
    keel.set_client(None)  # the command writes to the same store (./.keel): read it afresh afterwards
    done = keel_cmd(tmp_path, "models", "register", "--run", run.id[:12], "--name", "cancer")
    assert done.returncode == 0, done.stderr
    version = keel.registry.resolve("models:/cancer/1")
    assert version.source_run == run.id
    assert [c["name"] for c in version.signature["inputs"]["columns"]] == list(X.columns)
    assert list(version.datasets) == ["RandomForestClassifier.train@1"]
    assert version.metrics["train_accuracy"] == accuracy_score(y, model.predict(X))
    loaded = keel.registry.load("models:/cancer/1")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
