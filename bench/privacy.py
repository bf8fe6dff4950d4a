"""Privacy benchmark: accuracy of keel's differentially private models against epsilon, and of the non-private ones.

    python bench/privacy.py                 # epsilon 0.1, 0.3, 1, 3, 10; 10 seeds; both data sets
    python bench/privacy.py --seeds 3       # quicker

Data sets: scikit-learn's breast cancer (569 rows x 30 features; bounds: each feature's range, taken as public
knowledge) and a synthetic one (``make_classification``, 20,000 rows x 10 features, 6 informative, seed 0; bounds
[-4, 4] for every feature, chosen without looking). Each seed draws its own 75/25 split and its own noise; the table
shows the mean held-out accuracy (and its spread, the standard deviation over seeds) of keel's DP logistic
regression (objective perturbation) and Gaussian naive Bayes (Laplace sufficient statistics), and of
scikit-learn's ``LogisticRegression`` (C=1, the same [0, 1] scaling) and ``GaussianNB`` on the same splits. The
majority class's share is the floor a useless model reaches.

The DP models are trained with ``keel.privacy.learners`` (the functions ``keel.privacy.train`` calls); the last line
times one ``keel.privacy.train`` end to end (load, spend, train, run, register) on a temporary SQLite store.

The peer: diffprivlib 0.6.6 (IBM), in its own venv (``.bench-venv/diffprivlib``, created on first use: its
``LogisticRegression`` passes ``multi_class`` to scikit-learn's, which 1.8 removed, so it needs scikit-learn 1.7.x;
keel's environment has 1.9). ``bench/peers/diffprivlib_privacy.py`` gets the same rows, bounds, splits and seeds as a
file and fits diffprivlib's ``LogisticRegression`` (the same mechanism, objective perturbation: fed keel's
norm-1 rows with ``data_norm=1`` and keel's C, so the two should agree in distribution), the same with
diffprivlib's defaults (context), and its ``GaussianNB`` (its own mechanism) at each epsilon. The table prints the
mean accuracies over ``--peer-seeds`` seeds, keel - diffprivlib and the standard error of that difference.

    python bench/privacy.py --no-peer       # keel only
    python bench/privacy.py --no-install    # the peer only if its venv already exists
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0)
ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "diffprivlib_privacy.py"
VENV = ROOT / ".bench-venv" / "diffprivlib"
# scikit-learn 1.8 removed LogisticRegression(multi_class=...), which diffprivlib 0.6.6 passes: 1.7 is the newest it runs on
PEER_PACKAGES = ["diffprivlib==0.6.6", "scikit-learn>=1.7,<1.8", "numpy", "pandas"]


def _datasets() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_breast_cancer, make_classification

    x, y = load_breast_cancer(return_X_y=True)
    sx, sy = make_classification(n_samples=20_000, n_features=10, n_informative=6, n_redundant=2, random_state=0)
    return {
        "breast cancer (569 x 30)": (x, y, x.min(axis=0), x.max(axis=0)),
        "synthetic (20,000 x 10)": (sx, sy, np.full(10, -4.0), np.full(10, 4.0)),
    }


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(1_000 + seed).permutation(n)
    cut = round(n * 0.25)
    return order[cut:], order[:cut]


def _non_private(x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, seeds: int) -> dict[str, list[float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    from keel.privacy.learners import unit

    out: dict[str, list[float]] = {"logistic_regression": [], "gaussian_nb": [], "majority": []}
    z = unit(x, lo, hi)
    for seed in range(seeds):
        tr, te = _split(len(y), seed)
        out["logistic_regression"].append(LogisticRegression(max_iter=5000).fit(z[tr], y[tr]).score(z[te], y[te]))
        out["gaussian_nb"].append(GaussianNB().fit(z[tr], y[tr]).score(z[te], y[te]))
        out["majority"].append(max(np.mean(y[te] == c) for c in np.unique(y)))
    return out


def _private(x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, model: str, epsilon: float, seeds: int) -> list[float]:
    from keel.privacy.learners import LEARNERS

    features = [f"x{i}" for i in range(x.shape[1])]
    learner, scores = LEARNERS[model], []
    for seed in range(seeds):
        tr, te = _split(len(y), seed)
        trained = learner.fit(x[tr], y[tr], classes=sorted(np.unique(y).tolist()), lo=lo, hi=hi, features=features,
                              epsilon=epsilon, rng=np.random.default_rng(seed))  # fmt: skip
        import pandas as pd

        scores.append(float(trained.model.score(pd.DataFrame(x[te], columns=features), y[te])))
    return scores


def _cell(scores: list[float]) -> str:
    return f"{np.mean(scores):.3f} ±{np.std(scores):.3f}"


def _end_to_end() -> float:
    """Seconds of one ``keel.privacy.train`` (after a warm-up call) on a temporary store."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    import keel.data
    import keel.privacy
    from keel.context import Context

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DO_NOT_TRACK", "true")
        ctx = Context(f"sqlite:///{tmp}/keel.db", f"{tmp}/artifacts")
        frame: pd.DataFrame = load_breast_cancer(as_frame=True).frame
        v = keel.data.log(frame, "cancer", run=False, ctx=ctx)
        keel.privacy.set_budget(v.ref, 10.0, ctx=ctx)
        keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds="data", seed=0, ctx=ctx)
        start = time.perf_counter()
        keel.privacy.train(v.ref, target="target", epsilon=1.0, bounds="data", seed=1, ctx=ctx)
        took = time.perf_counter() - start
        ctx.close()
    return took


def peer_python(install: bool) -> tuple[str | None, str]:
    """diffprivlib's venv python, created on first use; (None, why) when it cannot be had."""
    python = VENV / "bin" / "python"
    probe = "from diffprivlib.models import LogisticRegression; LogisticRegression(epsilon=1.0, data_norm=1.0)"

    def works() -> str:
        if not python.exists():
            return f"no {VENV}"
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
        return "" if done.returncode == 0 else "diffprivlib does not run: " + done.stderr.strip().splitlines()[-1][-300:]

    why = works()
    if not why or not install:
        return (str(python), "") if not why else (None, why)
    print(f"creating {VENV}: {' '.join(PEER_PACKAGES)} (its own venv, once)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
    done = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        return None, "pip install failed: " + done.stderr.strip()[-500:]
    why = works()
    return (None, why) if why else (str(python), "")


def run_peer(python: str, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, seeds: int) -> dict[str, Any]:
    """diffprivlib's accuracies per model and epsilon (one per seed), on the splits ``_split`` draws for ``seeds``."""
    from keel.privacy.learners import auto_c

    splits = [_split(len(y), seed) for seed in range(seeds)]
    n_train = len(splits[0][0])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "task.npz"
        c_keel = np.array([auto_c(n_train, e) for e in EPSILONS])  # public: n and epsilon only
        np.savez(path, x=x, y=y, lo=lo, hi=hi, train=np.array([s[0] for s in splits]), test=np.array([s[1] for s in splits]),
                 seeds=np.arange(seeds), epsilons=np.array(EPSILONS), c_keel=c_keel)  # fmt: skip
        done = subprocess.run([python, str(PEER_SCRIPT), str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError("diffprivlib failed: " + done.stderr.strip()[-2000:])
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _versus(ours: list[float], theirs: list[float]) -> str:
    """keel - peer and the standard error of that difference (independent draws: the variances add)."""
    se = math.sqrt(np.var(ours, ddof=1) / len(ours) + np.var(theirs, ddof=1) / len(theirs))
    return f"{np.mean(ours) - np.mean(theirs):+.3f} ±{se:.3f}"


def _peer_table(python: str, x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, seeds: int) -> None:
    peer = run_peer(python, x, y, lo, hi, seeds)
    meta = peer["meta"]
    print(f"  vs diffprivlib {meta['diffprivlib']} (scikit-learn {meta['scikit-learn']}), mean accuracy over {seeds} seeds "
          f"(diff = keel - diffprivlib ±its standard error; diffprivlib took {peer['seconds']:.1f} s)")  # fmt: skip
    print(f"{'epsilon':>9} | {'keel LR':>7} | {'dpl LR':>7} | {'diff':>13} | {'dpl LR defaults':>15} || "
          f"{'keel NB':>7} | {'dpl NB':>7} | {'diff':>13}")  # fmt: skip
    for eps in EPSILONS:
        key = f"{eps:g}"
        lr, nb = _private(x, y, lo, hi, "logistic_regression", eps, seeds), _private(x, y, lo, hi, "gaussian_nb", eps, seeds)
        dlr, ddef, dnb = (peer[m][key] for m in ("logistic_regression", "logistic_regression_defaults", "gaussian_nb"))
        print(f"{key:>9} | {np.mean(lr):>7.3f} | {np.mean(dlr):>7.3f} | {_versus(lr, dlr):>13} | {np.mean(ddef):>15.3f} || "
              f"{np.mean(nb):>7.3f} | {np.mean(dnb):>7.3f} | {_versus(nb, dnb):>13}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="splits and noise draws per cell (default 10)")
    parser.add_argument("--peer-seeds", type=int, default=100, help="seeds of the keel vs diffprivlib table (default 100)")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--no-install", action="store_true", help="use diffprivlib's venv only if it exists")
    args = parser.parse_args(argv)
    python, why = (None, "--no-peer") if args.no_peer else peer_python(not args.no_install)
    for title, (x, y, lo, hi) in _datasets().items():
        base = _non_private(x, y, lo, hi, args.seeds)
        print(f"\n{title}: held-out accuracy, mean ±std over {args.seeds} seeds (majority class {np.mean(base['majority']):.3f})")
        print(f"{'epsilon':>9} | {'DP logistic regression':>22} | {'DP Gaussian NB':>16}")
        rows: list[tuple[str, Any, Any]] = []
        for eps in EPSILONS:
            rows.append((f"{eps:g}", _private(x, y, lo, hi, "logistic_regression", eps, args.seeds),
                         _private(x, y, lo, hi, "gaussian_nb", eps, args.seeds)))  # fmt: skip
        rows.append(("no DP", base["logistic_regression"], base["gaussian_nb"]))
        for label, lr, nb in rows:
            print(f"{label:>9} | {_cell(lr):>22} | {_cell(nb):>16}")
        if python:
            _peer_table(python, x, y, lo, hi, args.peer_seeds)
        else:
            print(f"  no diffprivlib comparison: {why}")
    print(f"\none keel.privacy.train end to end (breast cancer, SQLite): {_end_to_end() * 1000:.0f} ms")


if __name__ == "__main__":
    main()
