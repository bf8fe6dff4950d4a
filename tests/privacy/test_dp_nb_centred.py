"""keel's DP naive Bayes centres the squares on the released means: the sensitivity it calibrates to covers every
neighbour (one row replaced, possibly by a row of another class) and no smaller one would, and the noise it adds has
the scale it records."""

from __future__ import annotations

import itertools

import numpy as np

from keel.privacy import learners


def _centred(z: np.ndarray, y: np.ndarray, classes: list[int], means: np.ndarray) -> np.ndarray:
    return np.array([((z[y == c] - m) ** 2).sum(axis=0) for c, m in zip(classes, means, strict=True)])


def _corner_far_from(m: np.ndarray) -> np.ndarray:
    """The point of [0, 1]^d farthest from m in every coordinate: (z - m)^2 = max(m, 1 - m)^2 each."""
    return np.where(m < 0.5, 1.0, 0.0)


def test_no_replaced_row_moves_the_centred_squares_more_than_the_sensitivity_and_one_reaches_it() -> None:
    rng = np.random.default_rng(0)
    classes = [0, 1, 2]
    worst = 0.0
    for _ in range(20):
        z = rng.uniform(size=(40, 4))
        y = rng.integers(0, 3, size=40)
        y[:3] = classes  # every class has a row
        means = rng.uniform(size=(3, 4))  # any released means: the bound must hold for each
        bound = learners._centred_squares_sensitivity(means)
        before = _centred(z, y, classes, means)
        candidates = [rng.uniform(size=4) for _ in range(5)] + [_corner_far_from(m) for m in means]
        for i, (row, label) in itertools.product(range(3), itertools.product(candidates, classes)):
            z2, y2 = z.copy(), y.copy()
            z2[i], y2[i] = row, label
            change = np.abs(_centred(z2, y2, classes, means) - before).sum()
            assert change <= bound + 1e-12
            worst = max(worst, change / bound)
        # a row of class a on the corner farthest from a's mean, replaced by the corner farthest from b's mean, of
        # class b, with a and b the two classes of largest reach: the change is the bound itself, no smaller is valid
        reach = (np.maximum(means, 1.0 - means) ** 2).sum(axis=1)
        a, b = np.argsort(reach)[-2:]
        i = int(np.flatnonzero(y == a)[0])
        z[i] = _corner_far_from(means[a])
        z2, y2 = z.copy(), y.copy()
        z2[i], y2[i] = _corner_far_from(means[b]), b
        assert np.isclose(np.abs(_centred(z2, y2, classes, means) - _centred(z, y, classes, means)).sum(), bound)
    assert worst > 0.5  # the random neighbours came near the bound too: the check above is not vacuous


def test_the_noise_on_the_centred_squares_has_the_recorded_scale() -> None:
    """With many rows the variances are never clipped, so var * count - centred squares is the noise itself: over 300
    draws, |noise| / recorded scale averages 1 (a Laplace(0, b) draw has E|X| = b)."""
    rng = np.random.default_rng(1)
    z = rng.uniform(0.2, 0.8, size=(20_000, 2))
    y = (z[:, 0] + rng.normal(0, 0.1, len(z)) > 0.5).astype(int)
    lo, hi = np.zeros(2), np.ones(2)
    ratios = []
    for seed in range(300):
        trained = learners.gaussian_nb(z, y, classes=[0, 1], lo=lo, hi=hi, features=["a", "b"], epsilon=1.0,
                                       rng=np.random.default_rng(seed), min_var=1e-9)  # fmt: skip
        clf = trained.model[-1]
        scale = trained.details["laplace_scale_squares"]
        assert scale == learners._centred_squares_sensitivity(clf.theta_) / (1.0 / 3)
        assert np.all((clf.var_ > 1e-9) & (clf.var_ < 0.25))
        noise = clf.var_ * clf.class_count_[:, None] - _centred(z, y, [0, 1], clf.theta_)
        ratios.extend(np.abs(noise).ravel() / scale)
    assert abs(np.mean(ratios) - 1.0) < 0.08, np.mean(ratios)  # 1200 draws: standard error ~0.03
