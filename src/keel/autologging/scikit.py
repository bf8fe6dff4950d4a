"""scikit-learn: every estimator's ``fit``.

The estimators are ``sklearn.utils.all_estimators()``; each one's ``fit`` is patched where it is defined
(``RandomForestClassifier.fit`` is ``BaseForest.fit``), so subclasses that inherit it are covered too. A
parameter search (``GridSearchCV``, ...) logs its own params (not its estimator's, deeply: they vary), the best
params as ``best_<name>``, ``best_cv_score``, and its ``cv_results_`` as the table ``cv_results.parquet``.
"""

from __future__ import annotations

from typing import Any

from keel.autologging import record
from keel.autologging.patching import Logger, Patch, Settings, method_patch
from keel.tracking.run import ActiveRun


def fit_inputs(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(X, y) of a ``fit(self, X, y=None, ...)`` call, whatever the method names them."""
    import inspect

    names = [
        p.name for p in inspect.signature(method).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ][1:3]  # after self
    values = dict(zip(names, args, strict=False))
    values.update({k: kwargs[k] for k in names if k in kwargs})
    X = values.get(names[0]) if names else None
    y = values.get(names[1]) if len(names) > 1 and names[1] in ("y", "Y") else None
    return X, y


def is_search(model: Any) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(model, BaseSearchCV)


def _search_results(run: ActiveRun, search: Any) -> None:
    import pandas as pd

    best = getattr(search, "best_params_", None)
    if best:
        record.log_params(run, {f"best_{k}": value for k, value in best.items()})
    score = getattr(search, "best_score_", None)
    if score is not None:
        run.log_metric("best_cv_score", float(score))
    results = getattr(search, "cv_results_", None)
    if results:
        table = pd.DataFrame({k: list(v) for k, v in results.items()})
        for column in table.columns:  # param_* and params hold any Python value: text is what Parquet can keep
            if table[column].dtype == object:
                table[column] = table[column].map(str)
        run.client.log_table(run.id, table, "cv_results.parquet")


def _prepare(settings: Settings, method: Any) -> Any:
    def prepare(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Logger:
        X, y = fit_inputs(method, args, kwargs)
        search = is_search(model)

        def log(run: ActiveRun, _result: Any) -> None:
            params = model.get_params(deep=not search)
            record.log_fit(
                run, model, framework="sklearn", X=X, y=y, params=params,
                log_models=settings.log_models, log_datasets=settings.log_datasets,
            )  # fmt: skip
            if search:
                _search_results(run, model)

        return log

    return prepare


def patches(settings: Settings) -> list[Patch]:
    """One patch per class that defines the ``fit`` some scikit-learn estimator uses."""
    from sklearn.utils import all_estimators

    owners: dict[type, None] = {}
    for _name, cls in all_estimators():
        owner = next((c for c in cls.__mro__ if "fit" in c.__dict__), None)
        if owner is not None and callable(owner.__dict__["fit"]) and owner.__module__.startswith("sklearn."):
            owners[owner] = None
    return [method_patch(owner, "fit", "sklearn", _prepare(settings, owner.__dict__["fit"])) for owner in owners]
