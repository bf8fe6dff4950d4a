"""LightGBM: ``lightgbm.train`` and the scikit-learn API's ``fit`` (``LGBMModel`` and its subclasses).

Both log each validation set's metrics per boosting round (``valid_0-binary_logloss`` at steps 0, 1, ...) and
``best_iteration`` when early stopping ran. ``lightgbm.train`` gets a ``record_evaluation`` callback added to a
copy of the caller's callbacks; its training ``Dataset``'s raw data and label are read before training (LightGBM
frees them as it builds the Dataset), for the model's input example and the dataset.
"""

from __future__ import annotations

from typing import Any

from keel.autologging import record
from keel.autologging.patching import Logger, Patch, Settings, function_patch, method_patch
from keel.autologging.scikit import fit_inputs
from keel.tracking.run import ActiveRun


def _best_iteration(run: ActiveRun, best: Any) -> None:
    if best:  # LightGBM says 0 when there was no early stopping
        run.log_metric("best_iteration", float(best))


def _fit(settings: Settings, method: Any) -> Any:
    def prepare(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Logger:
        X, y = fit_inputs(method, args, kwargs)

        def log(run: ActiveRun, _result: Any) -> None:
            record.log_fit(
                run, model, framework="lightgbm", X=X, y=y, params=model.get_params(),
                log_models=settings.log_models, log_datasets=settings.log_datasets,
            )  # fmt: skip
            record.log_history(run, getattr(model, "evals_result_", None) or {})
            _best_iteration(run, getattr(model, "best_iteration_", None))

        return log

    return prepare


def _train(settings: Settings) -> Any:
    def prepare(arguments: dict[str, Any]) -> Logger:
        import lightgbm

        evals: dict[str, Any] = {}
        if arguments.get("valid_sets"):
            arguments["callbacks"] = [*(arguments.get("callbacks") or []), lightgbm.record_evaluation(evals)]
        train_set = arguments.get("train_set")
        X = getattr(train_set, "data", None)
        X = None if isinstance(X, str) or X is None else X  # a file path: no rows in memory
        y = train_set.get_label() if X is not None and train_set is not None else None

        def log(run: ActiveRun, booster: Any) -> None:
            run.set_tags({"keel.autolog": "lightgbm", "keel.estimator": "lightgbm.basic.Booster"})
            params = dict(arguments.get("params") or {})
            params["num_boost_round"] = arguments.get("num_boost_round")
            record.log_params(run, params)
            record.log_history(run, evals)
            _best_iteration(run, booster.best_iteration)
            record.each([
                (settings.log_models, lambda: record.log_model(run, booster, X)),
                (settings.log_datasets and X is not None, lambda: record.log_dataset(run, X, y, "Booster.train")),
            ])  # fmt: skip

        return log

    return prepare


def patches(settings: Settings) -> list[Patch]:
    import lightgbm
    import lightgbm.sklearn as ls

    classes = [c for c in vars(ls).values() if isinstance(c, type) and issubclass(c, ls.LGBMModel) and "fit" in c.__dict__]
    return [
        function_patch(lightgbm, "train", "lightgbm", _train(settings)),
        *(method_patch(c, "fit", "lightgbm", _fit(settings, c.__dict__["fit"])) for c in classes),
    ]
