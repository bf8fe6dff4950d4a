"""Differentially private learners, in numpy, that end as plain scikit-learn estimators.

Why not a library: diffprivlib 0.6.6 (the newest) does not import with scikit-learn 1.9 (its forest module imports
``DOUBLE`` and ``DTYPE`` from ``sklearn.tree._tree``, which 1.9 removed), and Opacus needs torch. The two mechanisms
here are short and follow their papers step by step; the output of each is post-processed into a fitted
``sklearn.pipeline.Pipeline`` (a ``MinMaxScaler`` built from the PUBLIC bounds, then ``LogisticRegression`` or
``GaussianNB`` with the private parameters), so the registry saves it with skops, serving and ONNX export work as
for any scikit-learn model, and post-processing costs no privacy.

Privacy unit: one row. Neighbouring datasets differ in one row replaced by another (the row count is public), as in
Chaudhuri et al. Features are clipped to their bounds and scaled into [0, 1] first: bounds are part of the
mechanism and must not come from the data (``train`` records where they came from). Noise comes from numpy's
generator (OS entropy unless seeded): floating-point samplers have known side channels (Mironov, CCS 2012); this is
the same trade-off diffprivlib makes without its optional crlibm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument

__all__ = ["LEARNERS", "Learner", "Trained", "auto_c", "gaussian_nb", "logistic_regression"]

_LOGISTIC_CURVATURE = 0.25  # c of Chaudhuri et al.: |l''| <= 1/4 for the logistic loss


@dataclass(frozen=True, slots=True)
class Trained:
    """A fitted scikit-learn pipeline and what the mechanism did (noise scales, the epsilon it used per part)."""

    model: Any
    details: dict[str, float] = field(default_factory=dict)


def _scaler(lo: np.ndarray, hi: np.ndarray, features: list[str]) -> Any:
    """A fitted ``MinMaxScaler(clip=True)`` mapping [lo, hi] to [0, 1], built from the bounds, never from rows."""
    from sklearn.preprocessing import MinMaxScaler

    span = np.where(hi > lo, hi - lo, 1.0)
    scaler = MinMaxScaler(clip=True)
    scaler.data_min_, scaler.data_max_, scaler.data_range_ = lo.astype(float), hi.astype(float), span
    scaler.scale_ = 1.0 / span
    scaler.min_ = -lo * scaler.scale_
    scaler.n_features_in_ = len(features)
    scaler.feature_names_in_ = np.asarray(features, dtype=object)
    scaler.n_samples_seen_ = 0  # nothing was seen: the bounds are public
    return scaler


def unit(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Rows clipped to the bounds and scaled into [0, 1] (what ``_scaler`` does at predict time)."""
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.asarray(np.clip((np.clip(x, lo, hi) - lo) / span, 0.0, 1.0), dtype=float)


def _noise_vector(rng: np.random.Generator, dim: int, epsilon: float) -> np.ndarray:
    """b with density proportional to exp(-epsilon/2 * ||b||): a uniform direction, a Gamma(dim, 2/epsilon) norm."""
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    return np.asarray(direction * rng.gamma(dim, 2.0 / epsilon))


def objective_perturbation(
    x: np.ndarray, y: np.ndarray, epsilon: float, lam: float, rng: np.random.Generator, max_iter: int = 1000
) -> tuple[np.ndarray, dict[str, float]]:
    """Weights of L2-regularised logistic regression, epsilon-DP by objective perturbation: Algorithm 2 of
    Chaudhuri, Monteleoni and Sarwate, "Differentially private empirical risk minimization", JMLR 12 (2011).

    ``x``: rows of norm at most 1; ``y`` in {-1, +1}; ``lam``: the regulariser (Lambda)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n, dim = x.shape
    c = _LOGISTIC_CURVATURE
    eps_p = epsilon - math.log(1 + 2 * c / (n * lam) + c**2 / (n * lam) ** 2)
    extra = 0.0  # Delta: more regularisation when n * Lambda is too small for the budget
    if eps_p <= 0:
        extra = c / (n * math.expm1(epsilon / 4)) - lam
        eps_p = epsilon / 2
    b = _noise_vector(rng, dim, eps_p)
    strength = lam + extra

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = y * (x @ w)
        value = np.logaddexp(0.0, -margin).mean() + 0.5 * strength * (w @ w) + (b @ w) / n
        grad = -(x.T @ (y * expit(-margin))) / n + strength * w + b / n
        return float(value), grad

    result = minimize(loss, np.zeros(dim), jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-9})
    if not result.success:  # the guarantee holds for the perturbed objective's minimiser, not for a point short of it
        raise InvalidArgument.for_field(
            "max_iter", max_iter, f"enough iterations for objective perturbation to converge (it stopped: {result.message})"
        )
    # only what follows from public numbers (n, epsilon, Lambda) is reported: the noise itself (even its norm) stays
    # secret, or the guarantee is gone
    return np.asarray(result.x), {"epsilon_prime": eps_p, "extra_regularisation": extra}


def auto_c(n: int, epsilon: float) -> float:
    """C (1 / Lambda) from the row count and epsilon alone (both public, so choosing it costs no privacy): the C at
    which the regulariser's term of Algorithm 2 takes a tenth of epsilon, 2 log(1 + c / (n Lambda)) = epsilon / 10,
    leaving the rest for the noise. More regularisation costs accuracy, less costs budget; on the breast cancer set
    (n = 426, 10 seeds) a tenth did as well as or better than a twentieth, a fifth, 3/10 and a half at every epsilon
    from 0.3 to 10."""
    return n * math.expm1(epsilon / 20) / _LOGISTIC_CURVATURE


def logistic_regression(
    x: np.ndarray,
    y: np.ndarray,
    *,
    classes: list[Any],
    lo: np.ndarray,
    hi: np.ndarray,
    features: list[str],
    epsilon: float,
    rng: np.random.Generator,
    C: float | None = None,
    max_iter: int = 1000,
) -> Trained:
    """Objective-perturbation logistic regression; with more than two classes, one-vs-rest with epsilon / K each
    (K models on the same rows: sequential composition). The intercept is a constant feature, so it is private too.

    ``C`` (1 / Lambda): by default ``auto_c``, from the row count and epsilon alone (both public)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    z = unit(x, lo, hi)
    dim = z.shape[1]
    norm = math.sqrt(dim + 1)  # [0, 1]^d plus the constant 1: every row has norm <= sqrt(d + 1)
    z1 = np.hstack([z, np.ones((len(z), 1))]) / norm
    targets = [classes[1]] if len(classes) == 2 else list(classes)
    share = epsilon / len(targets)
    C = auto_c(len(z1), share) if C is None else C
    weights, details = [], {"C": C}
    for i, positive in enumerate(targets):
        w, info = objective_perturbation(z1, np.where(y == positive, 1.0, -1.0), share, 1.0 / C, rng, max_iter)
        weights.append(w / norm)
        details.update({f"{k}_{i}" if len(targets) > 1 else k: v for k, v in info.items()})
    stacked = np.vstack(weights)
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.classes_ = np.asarray(classes)
    clf.coef_, clf.intercept_ = stacked[:, :dim], stacked[:, dim]
    clf.n_features_in_, clf.n_iter_ = dim, np.asarray([max_iter])
    return Trained(Pipeline([("bounds", _scaler(lo, hi, features)), ("model", clf)]), {**details, "epsilon_per_model": share})


def gaussian_nb(
    x: np.ndarray,
    y: np.ndarray,
    *,
    classes: list[Any],
    lo: np.ndarray,
    hi: np.ndarray,
    features: list[str],
    epsilon: float,
    rng: np.random.Generator,
    min_var: float = 1e-3,
) -> Trained:
    """Gaussian naive Bayes from Laplace-noised sufficient statistics of the [0, 1]-scaled features, in three releases
    of epsilon / 3 each, the later ones computed from what the earlier ones released:

    1. the row count per class. Replacing one row moves it between at most two classes: L1 sensitivity 2;
    2. the sum per class and feature: the row leaves one class's sums and joins another's, each value in [0, 1]:
       L1 sensitivity 2d. The means m = clip(sums / counts, 0, 1) follow from 1 and 2 (post-processing);
    3. the squares centred on those released means, S_cj = sum over class c's rows of (z_j - m_cj)^2 (as diffprivlib
       does: raw sums of squares, variance = squares / n - m^2, need sensitivity 2d, up to 4x the noise below when
       the means are near 1/2). For z_j in [0, 1],
       (z_j - m_cj)^2 lies in [0, r_cj] with r_cj = max(m_cj, 1 - m_cj)^2, so with R_c = sum_j r_cj: a row replaced
       within class a changes S_a by at most R_a in L1 (two values in [0, r_aj] per feature); a row moving from class
       a to b removes at most R_a from S_a and adds at most R_b to S_b. The L1 sensitivity is therefore at most the
       sum of the two largest R_c (R_0 with one class), which is <= 2 sum_j max_c r_cj. It depends only on m,
       which is already public.

    Why the total is epsilon-DP (one row replaced, ``dp.NEIGHBOURING``): 1 and 2 are Laplace mechanisms at their
    sensitivities, epsilon / 3 each; 3, for every fixed m, is a Laplace mechanism at its sensitivity for that m,
    epsilon / 3, and m is a function of 1 and 2's outputs only (not of the rows), so adaptive sequential composition
    gives epsilon / 3 * 3 = epsilon. The variances S / counts clipped to [min_var, 1/4] (a [0, 1] value varies by 1/4
    at most) and the fitted model are post-processing."""
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline

    z = unit(x, lo, hi)
    dim = z.shape[1]
    part = epsilon / 3
    rows = [z[y == c] for c in classes]
    counts = np.array([len(r) for r in rows], dtype=float) + rng.laplace(0.0, 2.0 / part, len(classes))
    sums = np.array([r.sum(axis=0) for r in rows]) + rng.laplace(0.0, 2.0 * dim / part, (len(classes), dim))
    counts = np.maximum(counts, 1.0)
    means = np.clip(sums / counts[:, None], 0.0, 1.0)  # released: the sensitivity below may depend on it
    sensitivity = _centred_squares_sensitivity(means)
    centred = np.array([((r - m) ** 2).sum(axis=0) for r, m in zip(rows, means, strict=True)])
    squares = centred + rng.laplace(0.0, sensitivity / part, (len(classes), dim))
    variances = np.clip(squares / counts[:, None], min_var, 0.25)
    clf = GaussianNB()
    clf.classes_ = np.asarray(classes)
    clf.class_count_, clf.class_prior_ = counts, counts / counts.sum()
    clf.theta_, clf.var_, clf.epsilon_ = means, variances, 0.0
    clf.n_features_in_ = dim
    # both scales follow from public numbers (d, epsilon) and the released means
    details = {"laplace_scale_sums": 2.0 * dim / part, "laplace_scale_squares": sensitivity / part}
    return Trained(Pipeline([("bounds", _scaler(lo, hi, features)), ("model", clf)]), details)


def _centred_squares_sensitivity(means: np.ndarray) -> float:
    """L1 sensitivity of the per-class sums of (z - m_c)^2, z in [0, 1]^d, to one row replaced: the two largest per
    class bounds R_c = sum_j max(m_cj, 1 - m_cj)^2 (the row leaves one class and joins another; see ``gaussian_nb``)."""
    reach = (np.maximum(means, 1.0 - means) ** 2).sum(axis=1)
    return float(np.sort(reach)[-2:].sum())  # one class: R_0, a row can only be replaced within it


@dataclass(frozen=True, slots=True)
class Learner:
    """A DP learner: its function, the mechanism recorded with each spend, and the params it accepts."""

    fit: Any
    mechanism: str
    params: tuple[str, ...]
    delta: float = 0.0  # pure epsilon-DP: spends no delta


LEARNERS: dict[str, Learner] = {
    "logistic_regression": Learner(logistic_regression, "objective-perturbation (Chaudhuri et al. 2011)", ("C", "max_iter")),
    "gaussian_nb": Learner(gaussian_nb, "laplace sufficient statistics, centred variances (naive Bayes)", ("min_var",)),
}
