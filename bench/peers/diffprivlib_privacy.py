"""diffprivlib's side of bench/privacy.py, run by diffprivlib's own venv (.bench-venv/diffprivlib).

    .bench-venv/diffprivlib/bin/python bench/peers/diffprivlib_privacy.py TASK.npz

``TASK.npz`` (written by bench/privacy.py): ``x``, ``y``, the public bounds ``lo`` and ``hi``, ``train`` (one row of
training-row indices per seed), ``test`` (the held-out indices, same shape rule), ``seeds``, ``epsilons`` and
``c_keel`` (keel's C for each epsilon, ``keel.privacy.learners.auto_c``). Prints one JSON line: per model and epsilon
the held-out accuracy of each seed (same order as ``seeds``), and the versions used.

Three diffprivlib models per (epsilon, seed), each seeded with ``random_state=seed``:

- ``logistic_regression``: the mechanism check. Fed exactly what keel's objective perturbation optimises: the rows
  clipped to the bounds and scaled into [0, 1], a constant 1 appended (keel's private intercept) and divided by
  sqrt(d + 1) so every row has norm <= 1; ``data_norm=1``, ``fit_intercept=False``; ``C = C_keel / n`` because
  scikit-learn's loss, which diffprivlib perturbs, is the mean loss plus ||w||^2 / (2 C n), where keel's is the mean
  loss plus ||w||^2 / (2 C); ``tol`` and ``max_iter`` as keel's L-BFGS (1e-9, 1000). With norm 1 diffprivlib's
  ``Vector`` mechanism is Algorithm 2 of Chaudhuri et al. term for term, so the two should agree in distribution.
- ``logistic_regression_defaults``: what a diffprivlib user writes: the [0, 1]-scaled rows, ``data_norm=sqrt(d)``
  (their largest norm), its default C=1, intercept and ``max_iter``. Context only: another regularisation.
- ``gaussian_nb``: ``GaussianNB(bounds=(0, 1) per feature)`` on the [0, 1]-scaled rows (keel's bounds, scaled):
  diffprivlib's own mechanism (geometric counts, truncated/bounded Laplace means and variances).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from typing import Any


def unit(x: Any, lo: Any, hi: Any) -> Any:
    """keel.privacy.learners.unit: rows clipped to the bounds, scaled into [0, 1] (public bounds, no data read)."""
    import numpy as np

    span = np.where(hi > lo, hi - lo, 1.0)
    return np.clip((np.clip(x, lo, hi) - lo) / span, 0.0, 1.0)


def with_intercept(z: Any) -> Any:
    """keel's optimisation space: [z, 1] / sqrt(d + 1), every row of norm <= 1."""
    import numpy as np

    return np.hstack([z, np.ones((len(z), 1))]) / math.sqrt(z.shape[1] + 1)


def run(task: dict[str, Any]) -> dict[str, Any]:
    import diffprivlib
    import numpy as np
    import sklearn
    from diffprivlib.models import GaussianNB, LogisticRegression

    x, y, lo, hi = task["x"], task["y"], task["lo"], task["hi"]
    z = unit(x, lo, hi)
    z1 = with_intercept(z)
    dim = z.shape[1]
    out: dict[str, Any] = {"logistic_regression": {}, "logistic_regression_defaults": {}, "gaussian_nb": {}}
    start = time.perf_counter()
    with warnings.catch_warnings():
        # lbfgs's convergence warnings at tiny epsilon (the noise dominates); no PrivacyLeakWarning: all bounds are given
        warnings.simplefilter("ignore")
        for eps, c_keel in zip(task["epsilons"].tolist(), task["c_keel"].tolist(), strict=True):
            key = f"{eps:g}"
            for name in out:
                out[name][key] = []
            for seed, tr, te in zip(task["seeds"].tolist(), task["train"], task["test"], strict=True):
                lr = LogisticRegression(epsilon=eps, data_norm=1.0, fit_intercept=False, C=c_keel / len(tr), tol=1e-9,
                                        max_iter=1000, random_state=seed)  # fmt: skip
                out["logistic_regression"][key].append(float(lr.fit(z1[tr], y[tr]).score(z1[te], y[te])))
                plain = LogisticRegression(epsilon=eps, data_norm=math.sqrt(dim), random_state=seed)
                out["logistic_regression_defaults"][key].append(float(plain.fit(z[tr], y[tr]).score(z[te], y[te])))
                nb = GaussianNB(epsilon=eps, bounds=(np.zeros(dim), np.ones(dim)), random_state=seed)
                out["gaussian_nb"][key].append(float(nb.fit(z[tr], y[tr]).score(z[te], y[te])))
    out["seconds"] = time.perf_counter() - start
    out["meta"] = {"diffprivlib": diffprivlib.__version__, "scikit-learn": sklearn.__version__,
                   "numpy": np.__version__, "python": sys.version.split()[0]}  # fmt: skip
    return out


def main() -> None:
    import numpy as np

    with np.load(sys.argv[1]) as data:
        task = {k: data[k] for k in data.files}
    print(json.dumps(run(task)))


if __name__ == "__main__":
    main()
