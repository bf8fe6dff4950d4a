"""Fairness and privacy benchmark. One function per part; ``--parts`` picks which run (default: all).

    python bench/fairness.py                 # every part
    python bench/fairness.py --parts a       # the assessment only
    python bench/fairness.py --json          # the figures as one JSON line too
    python bench/fairness.py --parts b,c     # differential privacy and federated learning (bench/privacy.py,
                                             # bench/federated.py, each also one command of its own)

(a) Assessment on --rows rows (1,000,000) with two sensitive features (sex: 3 values, region: 5; 15 intersection
    groups), labels, a classifier's 0/1 predictions and its scores (made here, fixed seed; a group-dependent score so
    the disparities are real). ``keel.fairness.measure`` (the label checks, the per-group metrics of each feature and
    of the intersection, the disparities, the flat metrics) against fairlearn's ``MetricFrame`` called directly on the
    same arrays for the same three sets, two ways:
      - "same call": the MetricFrame keel makes (keel's one per-group function returning every metric, fairlearn's
        own selection rate/TPR/FPR/count and scikit-learn's accuracy/AUC inside) and the differences/ratios: what keel
        adds around fairlearn. keel's overhead = keel / this - 1; target <= 20%.
      - "one function per metric": the MetricFrame a fairlearn user writes (selection_rate, true_positive_rate,
        false_positive_rate, accuracy_score, count, AUC as a sample parameter) with .difference()/.ratio(): a
        MetricFrame copies every group's columns element by element per metric function, which keel avoids.
    Best and median of --repeat runs, alternating the order. For context: fairlearn's four disparity functions
    (``demographic_parity_difference`` ...) on the intersection (each builds a frame of its own; the numbers must
    equal keel's), and keel's ``to_dict`` + HTML report.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

SEED = 20261130
TARGET_OVERHEAD = 0.20


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# (a) assessment -------------------------------------------------------------------------------------------------------------


def assessment_data(rows: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male", "other"], rows, p=[0.48, 0.48, 0.04])
    region = rng.choice(["north", "south", "east", "west", "centre"], rows)
    shift = np.select([sex == "female", sex == "male"], [-0.3, 0.3], 0.0) + np.select(
        [region == "north", region == "south"], [0.2, -0.2], 0.0
    )
    signal = rng.normal(size=rows)
    y = (signal + rng.normal(scale=0.8, size=rows) > 0).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(1.5 * signal + shift)))
    pred = (score >= 0.5).astype(np.int64)
    return y, pred, score, pd.DataFrame({"sex": sex, "region": region})


def _auc(y_true: Any, y_pred: Any, y_score: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) > 1 else math.nan


def fairlearn_per_metric(y: np.ndarray, pred: np.ndarray, score: np.ndarray, sf: pd.DataFrame) -> list[Any]:
    """The three sets with MetricFrame as a fairlearn user writes it: one function per metric."""
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score

    metrics = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
               "false_positive_rate": false_positive_rate, "accuracy": accuracy_score, "count": count, "auc": _auc}  # fmt: skip
    out = []
    for features in (sf["sex"], sf["region"], sf[["sex", "region"]]):
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=features,
                         sample_params={"auc": {"y_score": score}})  # fmt: skip
        out.append((mf.by_group, mf.difference(), mf.ratio()))
    return out


def fairlearn_same_call(y: np.ndarray, pred: np.ndarray, score: np.ndarray, sf: pd.DataFrame) -> list[Any]:
    """The three MetricFrames keel makes (its one per-group function), called directly, with the differences and
    ratios of the metrics taken from the frame."""
    from fairlearn.metrics import MetricFrame

    from keel.fairness.metrics import group_metrics

    out = []
    for features in (sf["sex"], sf["region"], sf[["sex", "region"]]):
        mf = MetricFrame(metrics={"metrics": group_metrics}, y_true=y, y_pred=pred, sensitive_features=features,
                         sample_params={"metrics": {"y_score": score}})  # fmt: skip
        table = pd.DataFrame([v for v in mf.by_group["metrics"] if isinstance(v, tuple)])
        out.append((table, table.max() - table.min(), table.min() / table.max()))
    return out


def fairlearn_functions(y: np.ndarray, pred: np.ndarray, sf: pd.DataFrame) -> dict[str, float]:
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
    )

    fns = {"demographic_parity_difference": demographic_parity_difference, "demographic_parity_ratio": demographic_parity_ratio,
           "equalized_odds_difference": equalized_odds_difference, "equalized_odds_ratio": equalized_odds_ratio}  # fmt: skip
    return {name: float(fn(y, pred, sensitive_features=sf)) for name, fn in fns.items()}


def assessment_part(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import keel.fairness

    y, pred, score, sf = assessment_data(args.rows)
    sides: dict[str, Callable[[], Any]] = {
        "keel": lambda: keel.fairness.measure(y, pred, sf, y_score=score),
        "same_call": lambda: fairlearn_same_call(y, pred, score, sf),
        "per_metric": lambda: fairlearn_per_metric(y, pred, score, sf),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    result = None
    for i in range(args.repeat):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for who in order:
            with warnings.catch_warnings():  # keel.fairness quiets the same scikit-learn warnings
                warnings.simplefilter("ignore")
                seconds, out = timed(sides[who])
            times[who].append(seconds)
            if who == "keel":
                result = out
        shown = ", ".join(f"{who} {times[who][-1]:.2f} s" for who in sides)
        print(f"  (a) run {i + 1}: {shown}", flush=True)
    assert result is not None
    functions_s, theirs = timed(lambda: fairlearn_functions(y, pred, sf))
    same = all(math.isclose(result.metrics[k], v, rel_tol=1e-12, abs_tol=0) for k, v in theirs.items())
    report_s, _ = timed(lambda: (result.to_dict(), result.html()))
    best = {who: min(t) for who, t in times.items()}
    median = {who: statistics.median(t) for who, t in times.items()}
    overhead = best["keel"] / best["same_call"] - 1
    return {
        "rows": args.rows,
        "groups": {"sex": int(sf["sex"].nunique()), "region": int(sf["region"].nunique()), "intersection": len(result.frame())},
        "seconds": {"best": best, "median": median},
        "overhead": overhead,
        "overhead_median": median["keel"] / median["same_call"] - 1,
        "keel_vs_per_metric": best["keel"] / best["per_metric"],
        "pass": overhead <= TARGET_OVERHEAD,
        "fairlearn_disparity_functions_s": functions_s,
        "disparities_equal_fairlearns": same,
        "report_s": report_s,
        "demographic_parity_difference": result.metrics["demographic_parity_difference"],
        "equalized_odds_difference": result.metrics["equalized_odds_difference"],
    }


def print_assessment(r: dict[str, Any]) -> None:
    g = r["groups"]
    print(
        f"(a) assessment: {r['rows']:,} rows, sex ({g['sex']}) x region ({g['region']}): {g['intersection']} intersection groups"
    )
    best, median = r["seconds"]["best"], r["seconds"]["median"]
    labels = {"keel": "keel.fairness.measure", "same_call": "MetricFrame x3, the same call", "per_metric":
              "MetricFrame x3, a function per metric"}  # fmt: skip
    for who, label in labels.items():
        print(f"    {label:<40} best {best[who]:6.2f} s   median {median[who]:6.2f} s")
    verdict = "PASS" if r["pass"] else "FAIL"
    print(f"    keel's overhead on the same call {r['overhead']:+.1%} (median {r['overhead_median']:+.1%}; "
          f"target <= {TARGET_OVERHEAD:.0%}): {verdict}")  # fmt: skip
    print(f"    keel / a function per metric: {r['keel_vs_per_metric']:.3f}")
    print(f"    for context: fairlearn's 4 disparity functions on the intersection {r['fairlearn_disparity_functions_s']:.2f} s "
          f"(same numbers as keel's: {r['disparities_equal_fairlearns']})")  # fmt: skip
    print(f"    keel's to_dict + HTML report {r['report_s'] * 1000:.1f} ms")
    print(f"    DP difference {r['demographic_parity_difference']:.4f}, EO difference {r['equalized_odds_difference']:.4f}")


# main -------------------------------------------------------------------------------------------------------------------------


def _script(name: str, *extra: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    """A part that is its own command (bench/privacy.py, bench/federated.py), run by this one as it is run alone."""

    def run(args: argparse.Namespace) -> dict[str, Any]:
        import subprocess
        import sys
        from pathlib import Path

        script = Path(__file__).resolve().parent / name
        done = subprocess.run([sys.executable, str(script), *extra], capture_output=True, text=True, check=False)
        return {"script": name, "returncode": done.returncode, "output": done.stdout + done.stderr}

    return run


def _print_script(r: dict[str, Any]) -> None:
    print(f"({r['script']}, exit {r['returncode']})")
    print(r["output"].rstrip())


PARTS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], None]]] = {
    "a": (assessment_part, print_assessment),
    # (b) DP accuracy against epsilon (0.1 to 10) vs the non-private model, and keel vs diffprivlib in its own venv
    "b": (_script("privacy.py"), _print_script),
    # (c) federated accuracy per round vs central training, FedAvg / median / trimmed mean, a poisoned silo, DP silos
    "c": (_script("federated.py"), _print_script),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="(a): rows assessed")
    parser.add_argument("--repeat", type=int, default=3, help="(a): runs of each side")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    args = parser.parse_args()
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    results = {}
    for part in wanted:
        run, show = PARTS[part]
        results[part] = run(args)
        show(results[part])
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
