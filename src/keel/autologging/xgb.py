"""XGBoost: ``xgboost.train`` and the scikit-learn API's ``fit`` (``XGBModel`` and its subclasses that define one).

Both log each evaluation set's metrics per boosting round (``validation_0-logloss`` at steps 0, 1, ...) and
``best_iteration`` when early stopping ran. ``xgboost.train`` gets an ``evals_result`` dict when the caller gave
none. Its ``DMatrix`` keeps no raw data, so a model trained there has no input example, signature or dataset.
"""

from __future__ import annotations

from typing import Any

from keel.autologging import record
from keel.autologging.patching import Logger, Patch, Settings, function_patch, method_patch
from keel.autologging.scikit import fit_inputs
from keel.tracking.run import ActiveRun


def _best_iteration(run: ActiveRun, booster: Any) -> None:
    best = getattr(booster, "best_iteration", None)
    if best is not None:
        run.log_metric("best_iteration", float(best))


def _fit(settings: Settings, method: Any) -> Any:
    def prepare(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Logger:
        X, y = fit_inputs(method, args, kwargs)

        def log(run: ActiveRun, _result: Any) -> None:
            record.log_fit(
                run, model, framework="xgboost", X=X, y=y, params=model.get_params(),
                log_models=settings.log_models, log_datasets=settings.log_datasets,
            )  # fmt: skip
            if hasattr(model, "evals_result_"):
                record.log_history(run, model.evals_result_)
                _best_iteration(run, model.get_booster())

        return log

    return prepare


def _train(settings: Settings) -> Any:
    def prepare(arguments: dict[str, Any]) -> Logger:
        if arguments.get("evals_result") is None and arguments.get("evals"):
            arguments["evals_result"] = {}
        evals = arguments.get("evals_result")

        def log(run: ActiveRun, booster: Any) -> None:
            run.set_tags({"keel.autolog": "xgboost", "keel.estimator": "xgboost.core.Booster"})
            params = dict(arguments.get("params") or {})
            params["num_boost_round"] = arguments.get("num_boost_round")
            if arguments.get("early_stopping_rounds") is not None:
                params["early_stopping_rounds"] = arguments["early_stopping_rounds"]
            record.log_params(run, params)
            if evals:
                record.log_history(run, evals)
            _best_iteration(run, booster)
            if settings.log_models:
                record.log_model(run, booster, None)

        return log

    return prepare


def patches(settings: Settings) -> list[Patch]:
    import xgboost
    import xgboost.sklearn as xs

    classes = [c for c in vars(xs).values() if isinstance(c, type) and issubclass(c, xs.XGBModel) and "fit" in c.__dict__]
    return [
        function_patch(xgboost, "train", "xgboost", _train(settings)),
        *(method_patch(c, "fit", "xgboost", _fit(settings, c.__dict__["fit"])) for c in classes),
    ]
