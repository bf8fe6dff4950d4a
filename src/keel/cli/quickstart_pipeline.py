"""The quickstart's training pipeline and HPO objective (importable, so process workers can run them)."""

from __future__ import annotations

from typing import Any

import keel

DATASET = "breast-cancer"
FOLDS = 5
MODELS = ("logistic_regression", "random_forest", "gradient_boosting")


def make_model(model: str, params: dict[str, Any]) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(C=float(params.get("C", 1.0)), max_iter=2000))
    if model == "random_forest":
        return RandomForestClassifier(
            n_estimators=int(params.get("n_estimators", 100)), max_depth=int(params.get("max_depth", 6)), random_state=0, n_jobs=1
        )
    return GradientBoostingClassifier(
        n_estimators=int(params.get("n_estimators", 100)), max_depth=int(params.get("max_depth", 2)), random_state=0
    )


@keel.step
def load(dataset: str) -> Any:
    import keel.data

    return keel.data.get(dataset)  # recorded as this step's input: lineage from the data version


@keel.step(outputs=4)
def split(frame: Any, test_size: float = 0.25, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    X, y = frame.drop(columns=["target"]), frame["target"]  # frames: models keep their feature names
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    return X_train, X_test, y_train, y_test


@keel.step
def fit(X_train: Any, y_train: Any, model: str, params: dict[str, Any]) -> Any:
    return make_model(model, params).fit(X_train, y_train)


@keel.step
def evaluate(model: Any, X_test: Any, y_test: Any) -> dict[str, float]:
    from keel.evaluation import log_evaluation

    run = keel.active_run()
    assert run is not None
    metrics = log_evaluation(run, y_test, y_score=model.predict_proba(X_test)[:, 1], prefix="test_")
    return {f"test_{k}": float(v) for k, v in metrics.items() if isinstance(v, float)}


@keel.pipeline
def train(dataset: str = DATASET, model: str = "logistic_regression", params: dict[str, Any] | None = None, seed: int = 0) -> Any:
    frame = load(dataset)
    X_train, X_test, y_train, y_test = split(frame, seed=seed)
    fitted = fit(X_train, y_train, model, params or {})
    return evaluate(fitted, X_test, y_test)


def cv_objective(trial: Any) -> float:
    """Cross-validated ROC AUC on the training split, reported fold by fold."""
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    import keel.data

    frame = keel.data.get(DATASET)
    X_train, _, y_train, _ = split.fn(frame)
    scores = []
    for fold, (tr, va) in enumerate(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(X_train, y_train)):
        model = make_model(trial["model"], trial.params).fit(X_train.iloc[tr], y_train.iloc[tr])
        scores.append(float(roc_auc_score(y_train.iloc[va], model.predict_proba(X_train.iloc[va])[:, 1])))
        trial.report(float(np.mean(scores)), fold)
    return float(np.mean(scores))
