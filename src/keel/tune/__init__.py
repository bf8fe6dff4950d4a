"""Layer 3: parallel experiments (sweeps) and hyper-parameter optimisation on Optuna.

>>> result = keel.tune.optimize(objective, {"C": keel.tune.loguniform(1e-3, 1e2)}, n_trials=30)  # doctest: +SKIP
>>> result.best_params                                                                               # doctest: +SKIP
"""

from keel.tune.space import Distribution, choice, grid, intrange, loguniform, random_configs, uniform
from keel.tune.study import StudyResult, optimize
from keel.tune.sweep import SweepResult, sweep
from keel.tune.trials import Trial, TrialPruned, TrialRecord

__all__ = [
    "Distribution", "StudyResult", "SweepResult", "Trial", "TrialPruned", "TrialRecord", "choice", "grid", "intrange",
    "loguniform", "optimize", "random_configs", "sweep", "uniform",
]  # fmt: skip
