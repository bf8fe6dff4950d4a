"""Federated learning benchmark: holdout accuracy per round of keel.privacy.federated_train against the same model
trained centrally on the pooled rows (which federated training never does).

    python bench/federated.py                       # process silos; --executor ray|inline, --rounds N

Workloads:
  (a) synthetic: 20,000 training rows x 10 features of very different scales, split over 5 silos that are NOT
      alike (sorted by one feature, sizes 2,000-6,000), 5,000 holdout rows; fedavg, median, trimmed_mean (trim 0.2).
  (b) breast cancer (scikit-learn's 569 rows, 30 features): 3 silos, a 30% holdout; fedavg.
  (c) poisoning: 5 honest silos of 2,000 rows and one of 10,000 rows of the same task with its labels flipped (as
      many rows as the honest together): each aggregation, against the central model on the honest rows.
  (d) differential privacy: (a)'s silos with epsilon 1 and 10 per silo (public bounds: the generator's scale x 4),
      fedavg, 2 noisy full-batch steps per round, learning rate 10 (the noise is fresh each run: figures vary).
The central model is StandardScaler + LogisticRegression on all training rows. Printed: the accuracy after each
round, the central accuracy, the gap after the last round, seconds per round (on process and Ray, spawning the
silos, each importing keel and pandas, is included) and bytes exchanged per round.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd


def central(train: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train[features], train["label"])
    return float(model.score(test[features], test["label"]))


def synthetic(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=25_000, n_features=10, n_informative=6, class_sep=0.7, random_state=seed)
    features = [f"x{i}" for i in range(10)]
    df = pd.DataFrame(x * np.logspace(-2, 3, 10), columns=features)
    df["label"] = y
    return df.iloc[:20_000], df.iloc[20_000:].reset_index(drop=True), features


def cancer() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.frame.rename(columns={"target": "label"}).sample(frac=1.0, random_state=0).reset_index(drop=True)
    features = [c for c in df.columns if c != "label"]
    df.columns = [c.replace(" ", "_") for c in df.columns]
    features = [c.replace(" ", "_") for c in features]
    cut = int(len(df) * 0.7)
    return df.iloc[:cut], df.iloc[cut:].reset_index(drop=True), features


def log_silos(parts: list[pd.DataFrame], prefix: str) -> list[str]:
    import keel.data

    return [keel.data.log(p.reset_index(drop=True), f"{prefix}-{i}").ref for i, p in enumerate(parts)]


def run(refs: list[str], holdout: str, args: argparse.Namespace, **kw: Any) -> dict[str, Any]:
    from keel.privacy.federated import federated_train

    started = time.perf_counter()
    result = federated_train(refs, target="label", holdout=holdout, rounds=args.rounds, executor=args.executor, **kw)
    seconds = time.perf_counter() - started
    return {
        "history": [round(a, 4) for a in result.history],
        "seconds": round(seconds, 2),
        "seconds_per_round": round(seconds / args.rounds, 3),
        "bytes_per_round": int(np.mean([r.bytes_exchanged for r in result.rounds])),
    }


def show(title: str, central_acc: float, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}  (central: {central_acc:.4f})")
    names = list(results)
    print("round  " + "  ".join(f"{n:>13}" for n in names))
    for r in range(len(next(iter(results.values()))["history"])):
        print(f"{r + 1:>5}  " + "  ".join(f"{results[n]['history'][r]:>13.4f}" for n in names))
    print("gap    " + "  ".join(f"{results[n]['history'][-1] - central_acc:>+13.4f}" for n in names))
    print("s/rnd  " + "  ".join(f"{results[n]['seconds_per_round']:>13.3f}" for n in names))
    print("B/rnd  " + "  ".join(f"{results[n]['bytes_per_round']:>13d}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executor", default="process", choices=["process", "ray", "inline"])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    os.chdir(tempfile.mkdtemp(prefix="keel-bench-federated-"))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import keel.data

    report: dict[str, Any] = {"executor": args.executor, "rounds": args.rounds}

    train, test, features = synthetic()
    ordered = train.sort_values("x3").reset_index(drop=True)  # silos that hold different parts of the space
    bounds = [0, 2_000, 6_000, 11_000, 15_000, 20_000]
    refs = log_silos([ordered.iloc[a:b] for a, b in itertools.pairwise(bounds)], "synthetic")
    keel.data.log(test, "synthetic-test")
    acc = central(train, test, features)
    results = {m: run(refs, "synthetic-test", args, aggregation=m, trim=0.2, name=f"syn-{m}") for m in
               ("fedavg", "median", "trimmed_mean")}  # fmt: skip
    show("(a) synthetic, 5 unlike silos", acc, results)
    report["synthetic"] = {"central": acc, **results}

    train, test, features = cancer()
    refs = log_silos([train.iloc[i::3] for i in range(3)], "cancer")
    keel.data.log(test, "cancer-test")
    acc = central(train, test, features)
    results = {"fedavg": run(refs, "cancer-test", args, name="cancer-fedavg")}
    show("(b) breast cancer, 3 silos", acc, results)
    report["breast_cancer"] = {"central": acc, **results}

    train, test, features = synthetic()
    honest, poisoned = train.iloc[:10_000], train.iloc[10_000:].copy()
    poisoned["label"] = 1 - poisoned["label"]  # the same task with flipped labels
    refs = [*log_silos([honest.iloc[i::5] for i in range(5)], "honest"), keel.data.log(poisoned, "poisoned").ref]
    acc = central(honest, test, features)
    results = {m: run(refs, "synthetic-test", args, aggregation=m, trim=0.2, name=f"poison-{m}") for m in
               ("fedavg", "median", "trimmed_mean")}  # fmt: skip
    show("(c) 5 honest silos (2,000 rows each) + 1 poisoned (labels flipped, 10,000 rows)", acc, results)
    report["poisoned"] = {"central": acc, **results}

    train, test, features = synthetic()
    refs = log_silos([ordered.iloc[a:b] for a, b in itertools.pairwise(bounds)], "private")
    store = keel.get_client().store
    for ref in refs:
        store.privacy.set_budget(ref, 100.0, 0.0)
    public = {f: (-4.0 * s, 4.0 * s) for f, s in zip(features, np.logspace(-2, 3, 10), strict=True)}
    acc = central(train, test, features)
    results = {
        f"eps={eps:g}": run(refs, "synthetic-test", args, epsilon=eps, bounds=public, classes=[0, 1], learning_rate=10.0,
                            local_epochs=2, name=f"dp-{eps:g}")
        for eps in (1.0, 10.0)
    }  # fmt: skip
    show("(d) differentially private, (a)'s silos", acc, results)
    report["private"] = {"central": acc, **results}
    print("\n" + json.dumps(report))


if __name__ == "__main__":
    main()
