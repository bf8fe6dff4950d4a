"""keel.autolog() for XGBoost (issue 13): the scikit-learn API's fit and xgboost.train, validation metrics per
boosting round, params, the model with its signature, the dataset; nothing patched unless asked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GridSearchCV
from xgboost.sklearn import XGBClassifier, XGBModel, XGBRegressor

import keel
from keel.core.entities import RunStatus
from keel.core.validation import param_to_str


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:400], y.iloc[:400], X.iloc[400:], y.iloc[400:]


def test_nothing_is_patched_before_autolog_and_the_originals_come_back() -> None:
    train, fits = xgb.train, {c: c.__dict__["fit"] for c in (XGBModel, XGBClassifier)}
    assert not hasattr(train, "__keel_autolog__") and not any(hasattr(f, "__keel_autolog__") for f in fits.values())
    assert keel.autolog(frameworks=["xgboost"]) == ["xgboost"]
    assert xgb.train.__wrapped__ is train  # type: ignore[attr-defined]
    assert XGBClassifier.__dict__["fit"].__wrapped__ is fits[XGBClassifier]
    assert XGBRegressor.fit.__wrapped__ is fits[XGBModel]  # type: ignore[attr-defined]  # inherited
    keel.autolog(disable=True)
    assert xgb.train is train and all(c.__dict__["fit"] is f for c, f in fits.items())


def test_fit_logs_the_validation_history_params_metrics_model_and_dataset(split, logged) -> None:
    X, y, X_val, y_val = split
    keel.autolog(frameworks=["xgboost"])
    model = XGBClassifier(n_estimators=12, max_depth=3, learning_rate=0.3, eval_metric=["logloss", "auc"])
    model.fit(X, y, eval_set=[(X, y), (X_val, y_val)], verbose=False)
    run = logged.only_run()
    assert run.status is RunStatus.FINISHED and run.tags["keel.autolog"] == "xgboost"
    assert run.params == {k: param_to_str(k, v) for k, v in model.get_params().items()}
    evals = model.evals_result()
    for data_name in ("validation_0", "validation_1"):
        for metric in ("logloss", "auc"):
            logged_history = logged.history(run, f"{data_name}-{metric}")
            assert logged_history == list(enumerate(evals[data_name][metric]))  # one value per round, steps 0..11
            assert len(logged_history) == 12
    assert run.metrics["train_accuracy"].value == accuracy_score(y, model.predict(X))
    assert run.metrics["train_roc_auc"].value == roc_auc_score(y, model.predict_proba(X)[:, 1])
    loaded = logged.model(run)
    np.testing.assert_array_equal(loaded.predict_proba(X_val), model.predict_proba(X_val))
    assert [c["name"] for c in logged.signature(run)["inputs"]["columns"]] == list(X.columns)
    [version] = logged.inputs(run)
    assert (version.name, version.row_count) == ("XGBClassifier.train", len(X))
    assert [c.name for c in version.schema] == [*X.columns, "target"]


def test_early_stopping_logs_the_rounds_run_and_the_best_iteration(split, logged) -> None:
    X, y, X_val, y_val = split
    keel.autolog(frameworks=["xgboost"])
    model = XGBClassifier(n_estimators=500, learning_rate=0.5, early_stopping_rounds=3, eval_metric="logloss")
    model.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    run = logged.only_run()
    rounds = model.get_booster().num_boosted_rounds()
    assert rounds < 500
    assert len(logged.history(run, "validation_0-logloss")) == rounds
    assert run.metrics["best_iteration"].value == model.best_iteration


def test_train_logs_params_history_and_the_booster(split, logged) -> None:
    X, y, X_val, y_val = split
    keel.autolog(frameworks=["xgboost"])
    dtrain, dval = xgb.DMatrix(X, label=y), xgb.DMatrix(X_val, label=y_val)
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.4, "eval_metric": "logloss"}
    mine: dict = {}  # the caller's evals_result is filled as usual
    booster = xgb.train(params, dtrain, num_boost_round=9, evals=[(dtrain, "train"), (dval, "eval")], evals_result=mine,
                        verbose_eval=False)  # fmt: skip
    run = logged.only_run()
    assert run.tags["keel.estimator"] == "xgboost.core.Booster"
    assert run.params == {"objective": "binary:logistic", "max_depth": "2", "eta": "0.4", "eval_metric": "logloss",
                          "num_boost_round": "9"}  # fmt: skip
    assert len(mine["eval"]["logloss"]) == 9
    assert logged.history(run, "eval-logloss") == list(enumerate(mine["eval"]["logloss"]))
    assert logged.history(run, "train-logloss") == list(enumerate(mine["train"]["logloss"]))
    np.testing.assert_array_equal(logged.model(run).predict(dval), booster.predict(dval))
    assert logged.inputs(run) == []  # a DMatrix keeps no raw rows to store


def test_train_without_evals_result_gets_its_history_anyway(split, logged) -> None:
    X, y, X_val, y_val = split
    keel.autolog(frameworks=["xgboost"])
    xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 4, evals=[(xgb.DMatrix(X_val, label=y_val), "val")],
              verbose_eval=False)  # fmt: skip
    assert [step for step, _ in logged.history(logged.only_run(), "val-logloss")] == [0, 1, 2, 3]


def test_a_grid_search_over_xgboost_logs_one_run(split, logged) -> None:
    X, y, _, _ = split
    keel.autolog()  # scikit-learn and XGBoost both patched: the search is the outermost fit
    GridSearchCV(XGBClassifier(n_estimators=5), {"max_depth": [2, 3]}, cv=2).fit(X, y)
    run = logged.only_run()
    assert run.tags["keel.autolog"] == "sklearn" and run.params["best_max_depth"] in ("2", "3")


def test_fit_errors_propagate_unchanged(split, logged) -> None:
    X, y, _, _ = split
    with pytest.raises(ValueError) as plain:
        XGBClassifier(n_estimators=2).fit(X, y + 5)  # classes must be 0..k-1
    keel.autolog(frameworks=["xgboost"])
    with pytest.raises(ValueError) as patched:
        XGBClassifier(n_estimators=2).fit(X, y + 5)
    assert str(patched.value) == str(plain.value)
    assert logged.only_run().status is RunStatus.FAILED
