"""Layer 3: ``keel.autolog()``: fits of scikit-learn, XGBoost and LightGBM models logged with no logging code.

>>> keel.autolog()                                   # doctest: +SKIP
>>> model = RandomForestClassifier().fit(X, y)       # a run: params, train_* metrics, model.pkl, the dataset
>>> keel.autolog(disable=True)                       # every fit is the library's own again

Nothing is patched until ``autolog()`` is called; importing this package imports none of the libraries. The
framework modules are a table of names (``FRAMEWORKS``), imported when their library is patched.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable

from keel.autologging.patching import AutologWarning, Patch, Settings, reset_warning
from keel.core.errors import InvalidArgument

# framework -> (the library it patches, the keel module that knows how)
FRAMEWORKS = {
    "sklearn": ("sklearn", "keel.autologging.scikit"),
    "xgboost": ("xgboost", "keel.autologging.xgb"),
    "lightgbm": ("lightgbm", "keel.autologging.lgbm"),
}

_applied: list[Patch] = []


def autolog(
    *,
    frameworks: Iterable[str] | None = None,
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
) -> list[str]:
    """Log every ``fit`` (and ``xgboost.train``/``lightgbm.train``) from now on; returns the frameworks patched.

    Each outermost call logs once (a Pipeline fitting its steps, a search fitting clones: one run): params,
    training metrics (``train_accuracy``, ``train_f1``, ``train_roc_auc``, ... for classifiers; ``train_mae``,
    ``train_rmse``, ``train_r2`` for regressors), per-round validation metrics of boosting
    (``validation_0-logloss`` with steps), the model as the run's ``model.pkl`` with an input example and its
    signature (``keel models register --run RUN -n NAME`` registers it), and the training data as a dataset
    version linked as the run's input. Into the active run, else a run started for the fit and ended after it.

    ``frameworks``: some of ``sklearn``, ``xgboost``, ``lightgbm`` (default: those installed). ``disable=True``
    restores every original function. Calling again replaces the previous settings. The fit's own exceptions
    pass through unchanged; a failure to log is one ``AutologWarning``, never an error of the fit.
    """
    wanted = _frameworks(frameworks)
    for patch in reversed(_applied):
        patch.restore()
    _applied.clear()
    if disable:
        return []
    reset_warning()
    settings = Settings(log_models=bool(log_models), log_datasets=bool(log_datasets))
    patched = []
    for name in wanted:
        library, module = FRAMEWORKS[name]
        if importlib.util.find_spec(library) is None:
            if frameworks is not None:
                raise InvalidArgument(f"keel.autolog: {name} is not installed (pip install {library})")
            continue
        for patch in importlib.import_module(module).patches(settings):
            patch.apply()
            _applied.append(patch)
        patched.append(name)
    return patched


def _frameworks(frameworks: Iterable[str] | None) -> list[str]:
    if frameworks is None:
        return list(FRAMEWORKS)
    if isinstance(frameworks, str):
        frameworks = [frameworks]
    chosen = list(frameworks)
    unknown = [f for f in chosen if f not in FRAMEWORKS]
    if unknown or not chosen:
        raise InvalidArgument.for_field("frameworks", unknown or chosen, f"some of {', '.join(FRAMEWORKS)}")
    return chosen


__all__ = ["FRAMEWORKS", "AutologWarning", "autolog"]
