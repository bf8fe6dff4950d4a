"""keel's DP learners against diffprivlib's, on breast cancer, through accuracies diffprivlib wrote in its own venv
(tests/fixtures/diffprivlib/write_fixtures.py: CI has no diffprivlib, which needs scikit-learn 1.7).

Both sides draw their noise independently, so the comparison is of distributions: the mean held-out accuracy per
epsilon, keel over ``KEEL_SEEDS`` seeds and diffprivlib over the fixture's 200, on the same splits. The tolerance
is ``Z`` standard errors of the difference of the two means plus ``MARGIN``:

- the standard error is sqrt(s_keel^2 / n_keel + s_dpl^2 / n_dpl) (independent noise; the shared splits only make
  it conservative). At epsilon 0.1 the accuracies spread by ~0.16 (the model is noise), so the tolerance is ~0.07;
  at epsilon 10 they spread by ~0.03 and it is ~0.015;
- ``Z = 3``: five epsilons per model, two-sided: with a Bonferroni correction at 5% family-wise, z = 2.58 per
  comparison; 3 leaves a little room and keeps the check fixed (both sides are seeded: it passes or fails the same
  way every run, it is not flaky);
- ``MARGIN = 0.005`` (under one held-out row of 143): what the two L-BFGS implementations may leave apart.

Logistic regression is the same mechanism on both sides (objective perturbation, Chaudhuri et al. 2011, Algorithm 2;
diffprivlib fed keel's norm-1 rows, data_norm=1, keel's C): two-sided, since keel doing much BETTER than the same
mechanism would mean it adds too little noise. ``test_the_comparison_sees_half_the_budget`` shows the tolerance is
tight enough to catch keel spending half the epsilon it reports.

Gaussian naive Bayes: both sides centre the squares on the released noisy means, but the neighbouring relations
differ (keel: one row replaced, so a row may change class and the counts' and sums' sensitivities double;
diffprivlib: one class's statistics changing), so only "keel not worse" is asserted, one-sided.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keel.privacy.learners import auto_c, gaussian_nb, logistic_regression

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "diffprivlib" / "breast_cancer.json"
EPSILONS = ("0.1", "0.3", "1", "3", "10")
KEEL_SEEDS = 100
Z = 3.0
MARGIN = 0.005


@pytest.fixture(scope="module")
def peer() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(FIXTURE.read_text())
    return found


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return x, y, x.min(axis=0), x.max(axis=0)


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """bench/privacy.py's and the fixture's split (the test checks the fixture used the same)."""
    order = np.random.default_rng(1_000 + seed).permutation(n)
    cut = round(n * 0.25)
    return order[cut:], order[:cut]


def _keel(data: tuple[np.ndarray, ...], model: str, epsilon: float, seeds: int = KEEL_SEEDS) -> list[float]:
    """keel's held-out accuracy per seed: the learner ``keel.privacy.train`` calls, scored through its pipeline."""
    import pandas as pd

    x, y, lo, hi = data
    fit: Callable[..., Any] = logistic_regression if model == "logistic_regression" else gaussian_nb
    features = [f"x{i}" for i in range(x.shape[1])]
    scores = []
    for seed in range(seeds):
        tr, te = _split(len(y), seed)
        trained = fit(x[tr], y[tr], classes=[0, 1], lo=lo, hi=hi, features=features, epsilon=epsilon,
                      rng=np.random.default_rng(seed))  # fmt: skip
        scores.append(float(trained.model.score(pd.DataFrame(x[te], columns=features), y[te])))
    return scores


def _gap(ours: list[float], cell: dict[str, Any]) -> tuple[float, float]:
    """keel - diffprivlib mean accuracy, and the tolerance for it."""
    se = math.sqrt(np.var(ours, ddof=1) / len(ours) + cell["std"] ** 2 / cell["n"])
    return float(np.mean(ours)) - cell["mean"], Z * se + MARGIN


def test_the_fixture_used_keels_splits_and_regularisation(peer: dict[str, Any], data: tuple[np.ndarray, ...]) -> None:
    n = len(data[1])
    tests = [_split(n, seed)[1] for seed in range(peer["seeds"])]
    assert hashlib.sha256(np.concatenate(tests).astype("<i8").tobytes()).hexdigest() == peer["split_sha256"]
    assert peer["n_train"] == n - len(tests[0])
    for key in EPSILONS:
        assert peer["c_keel"][key] == pytest.approx(auto_c(peer["n_train"], float(key)), rel=1e-12)
    cells = peer["models"]["logistic_regression"]
    assert [len(cells[k]["accuracies"]) for k in EPSILONS] == [peer["seeds"]] * len(EPSILONS)
    assert cells["0.1"]["mean"] < 0.6 < 0.85 < cells["10"]["mean"]  # the noise is there and shrinks with epsilon


@pytest.mark.parametrize("key", EPSILONS)
def test_logistic_regression_matches_diffprivlib(peer: dict[str, Any], data: tuple[np.ndarray, ...], key: str) -> None:
    gap, tolerance = _gap(_keel(data, "logistic_regression", float(key)), peer["models"]["logistic_regression"][key])
    assert abs(gap) <= tolerance, f"epsilon {key}: keel - diffprivlib = {gap:+.4f}, tolerance {tolerance:.4f}"


def test_the_comparison_sees_half_the_budget(peer: dict[str, Any], data: tuple[np.ndarray, ...]) -> None:
    """keel's logistic regression at epsilon 1.5 against diffprivlib's at 3: a mechanism that spent half the epsilon
    it reports would fail the test above."""
    gap, tolerance = _gap(_keel(data, "logistic_regression", 1.5), peer["models"]["logistic_regression"]["3"])
    assert gap < -tolerance


# Measured (keel 100 seeds, diffprivlib 200), keel - diffprivlib from epsilon 0.1 to 10: -0.021, -0.007, +0.009,
# -0.044, +0.017 (keel 0.516, 0.558, 0.649, 0.731, 0.874; tolerances 0.066, 0.065, 0.054, 0.051, 0.034). Before the
# variances were centred on the released means (raw sums of squares, L1 sensitivity 2d) epsilon 3 and 10 failed:
# 0.672 vs 0.775 and 0.809 vs 0.857. At 3 keel is still behind by most of the tolerance: what is left is the row
# replaced (sensitivities twice diffprivlib's, whose neighbours differ in one class's statistics): with every
# sensitivity halved (scratch run) keel's would be ahead at every epsilon, by +0.005 to +0.055.
@pytest.mark.parametrize("key", EPSILONS)
def test_gaussian_nb_not_worse_than_diffprivlib(peer: dict[str, Any], data: tuple[np.ndarray, ...], key: str) -> None:
    gap, tolerance = _gap(_keel(data, "gaussian_nb", float(key)), peer["models"]["gaussian_nb"][key])
    assert gap >= -tolerance, f"epsilon {key}: keel - diffprivlib = {gap:+.4f}, tolerance {tolerance:.4f}"
