"""keel.autolog() for LightGBM (issue 13): the scikit-learn API's fit and lightgbm.train, validation metrics per
boosting round, params, the model with its signature, the dataset; nothing patched unless asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from lightgbm.sklearn import LGBMClassifier, LGBMModel, LGBMRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

import keel
from keel.core.entities import RunStatus
from keel.core.validation import param_to_str


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" ", "_") for c in X.columns]  # LightGBM rewrites spaces in feature names
    return X.iloc[:400], y.iloc[:400], X.iloc[400:], y.iloc[400:]


def test_nothing_is_patched_before_autolog_and_the_originals_come_back() -> None:
    train, fits = lgb.train, {c: c.__dict__["fit"] for c in (LGBMModel, LGBMClassifier, LGBMRegressor)}
    assert not hasattr(train, "__keel_autolog__") and not any(hasattr(f, "__keel_autolog__") for f in fits.values())
    assert keel.autolog(frameworks=["lightgbm"]) == ["lightgbm"]
    assert lgb.train.__wrapped__ is train  # type: ignore[attr-defined]
    assert all(c.__dict__["fit"].__wrapped__ is f for c, f in fits.items())
    keel.autolog(disable=True)
    assert lgb.train is train and all(c.__dict__["fit"] is f for c, f in fits.items())


def test_fit_logs_the_validation_history_params_metrics_model_and_dataset(split, logged) -> None:
    X, y, X_val, y_val = split
    keel.autolog(frameworks=["lightgbm"])
    model = LGBMClassifier(n_estimators=11, num_leaves=7, learning_rate=0.2, verbose=-1)
    model.fit(X, y, eval_X=(X_val,), eval_y=(y_val,), eval_metric="auc")  # LGBMClassifier.fit -> LGBMModel.fit: one run
    run = logged.only_run()
    assert run.status is RunStatus.FINISHED and run.tags["keel.autolog"] == "lightgbm"
    assert run.params == {k: param_to_str(k, v) for k, v in model.get_params().items()}
    for metric in ("binary_logloss", "auc"):
        values = model.evals_result_["valid_0"][metric]
        assert len(values) == 11
        assert logged.history(run, f"valid_0-{metric}") == list(enumerate(values))
    assert run.metrics["train_accuracy"].value == accuracy_score(y, model.predict(X))
    assert run.metrics["train_roc_auc"].value == roc_auc_score(y, np.asarray(model.predict_proba(X))[:, 1])
    assert "best_iteration" not in run.metrics  # no early stopping
    np.testing.assert_array_equal(logged.model(run).predict_proba(X_val), model.predict_proba(X_val))
    assert [c["name"] for c in logged.signature(run)["inputs"]["columns"]] == list(X.columns)
    [version] = logged.inputs(run)
    assert (version.name, version.row_count) == ("LGBMClassifier.train", len(X))


def test_a_regressor_logs_regression_metrics(logged) -> None:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    keel.autolog(frameworks=["lightgbm"])
    model = LGBMRegressor(n_estimators=8, verbose=-1).fit(X, y)
    run = logged.only_run()
    assert run.metrics["train_r2"].value == r2_score(y, model.predict(X))
    [version] = logged.inputs(run)
    assert [c.name for c in version.schema] == [*X.columns, "target"]


def test_train_logs_params_history_model_and_the_raw_training_rows(split, logged) -> None:
    X, y, X_val, y_val = split
    keel.autolog(frameworks=["lightgbm"])
    train_set = lgb.Dataset(X, label=y)
    valid = lgb.Dataset(X_val, label=y_val, reference=train_set)
    callbacks: list[Callable[..., Any]] = [lgb.early_stopping(3, verbose=False)]
    params = {"objective": "binary", "learning_rate": 0.5, "num_leaves": 5, "verbose": -1}
    booster = lgb.train(params, train_set, num_boost_round=300, valid_sets=[valid], valid_names=["val"], callbacks=callbacks)
    assert len(callbacks) == 1  # the caller's list is left as it was
    run = logged.only_run()
    assert run.tags["keel.estimator"] == "lightgbm.basic.Booster"
    assert run.params == {"objective": "binary", "learning_rate": "0.5", "num_leaves": "5", "verbose": "-1",
                          "num_boost_round": "300"}  # fmt: skip
    assert booster.best_iteration < 300 - 3  # early stopping ran: 3 rounds past the best, then stopped
    assert len(logged.history(run, "val-binary_logloss")) == booster.best_iteration + 3
    assert run.metrics["best_iteration"].value == booster.best_iteration
    np.testing.assert_array_equal(logged.model(run).predict(X_val), booster.predict(X_val))
    assert [c["name"] for c in logged.signature(run)["inputs"]["columns"]] == list(X.columns)
    [version] = logged.inputs(run)
    assert (version.name, version.row_count) == ("Booster.train", len(X))
    stored = keel.data.get(version.ref, run=False)
    np.testing.assert_array_equal(stored["target"], y.to_numpy())


def test_fit_errors_propagate_unchanged(split, logged) -> None:
    X, y, _, _ = split
    with pytest.raises(lgb.basic.LightGBMError) as plain:
        LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y.iloc[:-1])
    keel.autolog(frameworks=["lightgbm"])
    with pytest.raises(lgb.basic.LightGBMError) as patched:
        LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y.iloc[:-1])
    assert type(patched.value) is type(plain.value) and str(patched.value) == str(plain.value)
    assert logged.only_run().status is RunStatus.FAILED
