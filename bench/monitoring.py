"""Monitoring benchmark: one window of 1,000,000 logged predictions evaluated by keel.monitor, against Evidently's
presets and NannyML's CBPE (each in its own venv), plus mergeable profiles and performance estimation.

    python bench/monitoring.py                    # everything; the peers' venvs are created on first use
    python bench/monitoring.py --no-peer          # keel only
    python bench/monitoring.py --peer-rows 200000 # Evidently on the first 200,000 rows of each frame only

Data (made here, fixed seed): a binary classifier's prediction log window of --rows rows x 20 features (16 numeric
of four families, a few with missing values; 4 categorical of 5 values each) spread over 24 hours, its training
(reference) frame of --reference-rows rows, and drift injected into 5 of the 20 columns (``DRIFTS``). The model is
a fixed logistic score of 4 numeric features and one categorical (``proba1``, ``output`` = proba1 >= 0.5); labels
are drawn from a true probability that is a different (steeper) function of the same score plus a feature the model
does not use, so the model's probabilities are not calibrated and labels are noisy.

Workloads (issue 11, "Benchmarks"):
  (1) keel: the window as keel.monitor evaluates it, the Arrow table ``keel.monitor.windows.read_window`` returns,
      passed to ``evaluate_table`` with the reference frame's stored profile (``keel.data.profiling.compute_profile``,
      made once as dataset logging does), an Estimator fitted on the labelled reference and a label per row: drift,
      quality, realised and estimated performance, health. Best and median of --repeat runs after a warm-up.
      Then the real path: the window written as keel serve logs it (row dicts; inputs as objects since some are
      categorical) through ``ParquetSink`` in batches of 10,000 rows into a temporary Context's artifact store, labels
      with ``log_labels``, and ``evaluate_window`` timed (reading the Parquet files and the labels included).
  (2) Evidently (its own venv, .bench-venv/evidently: it needs pandas < 3): DataDriftPreset on the 20 features and
      ClassificationPreset on the same window and reference, read from Parquet files; each timed once after a
      warm-up on 2,000 rows; the columns it found drifted; keel/Evidently time ratio.
  (3) 24 hourly profiles (``Profile.from_table`` of each hour of the window) merged into the day
      (``merge_profiles``) against the day recomputed from its rows (``Profile.from_table`` of the whole day, and the
      exact ``compute_profile``): times, and the largest difference of any of the 1,001 grid quantiles, in rank
      (the exact normalized rank of the merged quantile against its grid point) and in value (over the column's std).
  (4) Performance before labels: a covariate-shifted test set (rows of fresh, undrifted data kept with a probability
      that is highest where the model is unsure, proba1 near 0.5), ``keel.monitor.Estimator`` fitted on a labelled
      reference; estimated vs realised accuracy, F1 and ROC AUC; NannyML's CBPE on the same data in its own venv
      (.bench-venv/nannyml) where it installs.

Targets: (1) <= 2 s; (2) >= 50x faster than Evidently's two presets with the same drifted columns found;
(3) merged quantiles within the KLL sketch's rank error bound; (4) estimates within 0.03 of the realised values.
The JSON of every figure is printed last.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ["DO_NOT_TRACK"] = "true"

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
VENVS = ROOT / ".bench-venv"
# what each peer's venv gets: Evidently 0.7 fails to import with pandas 3
PEER_PACKAGES = {
    "evidently": ["evidently==0.7.23", "pandas<3", "pyarrow"],
    # nannyml 0.13.1 imports statsmodels without requiring it
    "nannyml": ["nannyml==0.13.1", "statsmodels", "pandas<3", "pyarrow"],
}
SEED = 20261101
HOURS = 24
LOG_BATCH = 10_000  # rows per Parquet file: the prediction log's default max_batch
NUMERIC = [f"num_{i:02d}" for i in range(16)]
CATEGORICAL = [f"cat_{j}" for j in range(4)]
FEATURES = NUMERIC + CATEGORICAL
WITH_MISSING = {"num_03": 0.002, "num_07": 0.01, "num_11": 0.002, "cat_3": 0.001}
DRIFTS = {
    "num_02": "mean +0.4 std",
    "num_05": "scale x1.6 around its minimum",
    "num_09": "30% of rows +1.5 std",
    "num_12": "mean -0.35 std",
    "cat_2": "0.2 of the mass moved from the commonest value to the rarest",
}
CATEGORIES = np.array(["a", "b", "c", "d", "e"])
CAT0_EFFECT = np.array([-0.5, 0.0, 0.3, 0.6, -0.2])
# targets
WINDOW_TARGET_S = 2.0
EVIDENTLY_RATIO_TARGET = 50.0
ESTIMATE_ERROR_TARGET = 0.03
METRICS = ("accuracy", "f1", "roc_auc")

console = Console(width=None if os.isatty(1) else 140)


# data ---------------------------------------------------------------------------------------------------------------


class World:
    """The columns' distributions (drawn once from the seed) and the model; ``draw`` makes frames from them."""

    def __init__(self, seed: int) -> None:
        params = np.random.default_rng(seed)
        self.numeric = [(i % 4, float(params.uniform(-50, 50)), float(params.uniform(0.5, 20))) for i in range(16)]
        self.categorical = [params.dirichlet(np.full(5, 3.0)) for _ in range(4)]
        self.moments: dict[str, tuple[float, float]] = {}  # the reference's mean and std: the model's scaling

    def draw(self, rng: np.random.Generator, rows: int, drifted: bool) -> dict[str, np.ndarray]:
        data: dict[str, np.ndarray] = {}
        for i, (family, loc, scale) in enumerate(self.numeric):
            name = NUMERIC[i]
            if family == 0:
                values = rng.normal(loc, scale, rows)
            elif family == 1:
                values = loc + scale * rng.lognormal(0, 0.6, rows)
            elif family == 2:
                values = rng.uniform(loc, loc + 4 * scale, rows)
            else:
                values = loc + scale * rng.gamma(2.0, 1.0, rows)
            if drifted and name in DRIFTS:
                std = float(values.std())
                if name == "num_02":
                    values = values + 0.4 * std
                elif name == "num_05":
                    values = loc + 1.6 * (values - loc)
                elif name == "num_09":
                    values = values + 1.5 * std * (rng.random(rows) < 0.3)
                elif name == "num_12":
                    values = values - 0.35 * std
            if name in WITH_MISSING:
                values[rng.random(rows) < WITH_MISSING[name]] = np.nan
            data[name] = values
        for j, p in enumerate(self.categorical):
            name = CATEGORICAL[j]
            if drifted and name in DRIFTS:
                p = p.copy()
                p[np.argmax(p)] -= 0.2
                p[np.argmin(p)] += 0.2
            codes = rng.choice(5, rows, p=p).astype(np.int8)
            if name in WITH_MISSING:
                codes[rng.random(rows) < WITH_MISSING[name]] = -1  # null
            data[name] = codes
        return data

    def fit_scaling(self, reference: dict[str, np.ndarray]) -> None:
        for name in NUMERIC:
            self.moments[name] = (float(np.nanmean(reference[name])), float(np.nanstd(reference[name])))

    def _z(self, data: dict[str, np.ndarray], name: str) -> np.ndarray:
        mean, std = self.moments[name]
        return np.nan_to_num((data[name] - mean) / std)  # the model imputes a missing value with the mean

    def score(self, data: dict[str, np.ndarray]) -> np.ndarray:
        z = self._z
        cat0 = np.where(data["cat_0"] >= 0, CAT0_EFFECT[np.clip(data["cat_0"], 0, 4)], 0.0)
        return 1.0 * z(data, "num_00") - 0.8 * z(data, "num_02") + 0.6 * z(data, "num_04") + 0.5 * z(data, "num_07") + cat0

    def predict(self, data: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        """Adds the model's ``proba1`` and ``output`` and the true ``label`` to ``data``."""
        score = self.score(data)
        data["proba1"] = 1.0 / (1.0 + np.exp(-score))
        data["output"] = (data["proba1"] >= 0.5).astype(np.int64)
        true_logit = 1.4 * score - 0.3 + 0.5 * self._z(data, "num_10")
        data["label"] = (rng.random(score.size) < 1.0 / (1.0 + np.exp(-true_logit))).astype(np.int64)


def categorical_array(codes: np.ndarray) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes), mask=mask if mask.any() else None)
    return pc.cast(pa.DictionaryArray.from_arrays(indices, pa.array(CATEGORIES)), pa.string())


def feature_columns(data: dict[str, np.ndarray]) -> dict[str, Any]:
    import pyarrow as pa

    out: dict[str, Any] = {}
    for name in FEATURES:
        values = data[name]
        out[name] = categorical_array(values) if name in CATEGORICAL else pa.array(values, from_pandas=True)  # NaN: null
    return out


def window_table(data: dict[str, np.ndarray], start_ms: int, rng: np.random.Generator) -> Any:
    """The window in the shape ``read_window`` returns: time, request_id, row, latency_ms, the inputs, output, proba1;
    one request per row, spread over ``HOURS`` hours in time order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = data["proba1"].size
    times = start_ms + np.sort(rng.integers(0, HOURS * 3_600_000, rows))
    ids = pc.binary_join_element_wise("req-", pc.cast(pa.array(np.arange(rows)), pa.string()), "")
    latency = np.round(0.15 + rng.lognormal(-1.5, 0.5, rows), 3)
    columns = {"time": pa.array(times), "request_id": ids, "row": pa.array(np.zeros(rows, np.int64)),
               "latency_ms": pa.array(latency), **feature_columns(data),
               "output": pa.array(data["output"]), "proba1": pa.array(data["proba1"])}  # fmt: skip
    return pa.table(columns)


def reference_table(data: dict[str, np.ndarray]) -> Any:
    import pyarrow as pa

    return pa.table({**feature_columns(data), "output": pa.array(data["output"]), "proba1": pa.array(data["proba1"]),
                     "label": pa.array(data["label"])})  # fmt: skip


# timing -------------------------------------------------------------------------------------------------------------


def timed(fn: Any, repeat: int) -> tuple[dict[str, float], Any]:
    timings, result = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - t0)
    return {"best_s": min(timings), "median_s": statistics.median(timings), "runs_s": timings}, result


def profiled(fn: Any, top: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# (1) keel on the window ---------------------------------------------------------------------------------------------


def keel_window(table: Any, reference: Any, labels: list[int], repeat: int, profile: bool) -> dict[str, Any]:
    from keel.data.profiling import compute_profile
    from keel.monitor import Estimator, Profile
    from keel.monitor.windows import evaluate_table

    t0 = time.perf_counter()
    stored = compute_profile(reference.select(FEATURES))  # what logging the training dataset stores, once
    reference_profile_s = time.perf_counter() - t0
    estimator = Estimator().fit(reference["proba1"].to_numpy(), reference["label"].to_numpy())
    evaluate_table(table.slice(0, 10_000), reference=stored, estimator=estimator, labels=labels[:10_000])  # warm-up

    def run() -> Any:
        return evaluate_table(table, reference=stored, estimator=estimator, labels=labels)

    timing, result = timed(run, repeat)
    profile_timing, _ = timed(lambda: Profile.from_table(table.select([*FEATURES, "output"])), repeat)
    out = {**timing, "reference_profile_s": reference_profile_s, "profile_only_s": profile_timing["best_s"]}
    out.update(summarise(result))
    if profile:
        out["cprofile"] = profiled(run)
    return out | {"_stored": stored, "_estimator": estimator}


def summarise(result: Any) -> dict[str, Any]:
    values = result.values()
    drift = result.drift
    return {
        "drifted": list(drift.drifted) if drift else [],
        "scores": {c.column: {"test": c.test, "statistic": c.statistic, "drifted": c.drifted} for c in drift.columns}
        if drift
        else {},
        "realised": result.performance.get("realised"),
        "estimated": result.performance.get("estimated"),
        "labelled_rows": result.performance.get("labelled_rows"),
        "health": result.health,
        "quality_max_missing_share": max(v for k, v in values.items() if k.endswith(".missing_share")),
        "quality_max_out_of_range_share": max((v for k, v in values.items() if k.endswith(".out_of_range_share")), default=0),
        "values": len(values),
    }


def log_rows(table: Any, start: int, stop: int) -> list[dict[str, Any]]:
    """Rows ``start:stop`` of the window as keel serve's request path hands them to the prediction log (its
    ``_log_rows``): inputs as an object of what the model read (some inputs are text, so no numeric matrix row)."""
    part = table.slice(start, stop - start)
    features = [part[name].to_pylist() for name in FEATURES]
    records = [dict(zip(FEATURES, values, strict=True)) for values in zip(*features, strict=True)]
    p = part["proba1"].to_numpy()
    proba = list(np.column_stack([1.0 - p, p]))
    ids, times, latency = part["request_id"].to_pylist(), part["time"].to_pylist(), part["latency_ms"].to_pylist()
    outputs = part["output"].to_pylist()
    return [
        {"request_id": ids[i], "row": 0, "time": times[i], "deployment": "bench", "route": "primary",
         "model": "models:/bench/1", "served": True, "inputs": records[i], "output": outputs[i], "proba": proba[i],
         "latency_ms": latency[i], "replica": "bench-0"}
        for i in range(len(ids))
    ]  # fmt: skip


def keel_log(table: Any, labels: list[int], stored: Any, estimator: Any, repeat: int, profile: bool) -> dict[str, Any]:
    """The window through the real prediction log: Parquet files in a temporary store, labels in its database."""
    from keel.context import Context
    from keel.monitor.windows import evaluate_window, read_window
    from keel.serve import log_labels
    from keel.serve.parquet_sink import ParquetSink

    folder = Path(tempfile.mkdtemp(prefix="keel-bench-monitoring-"))
    ctx = Context(f"sqlite:///{folder / 'keel.db'}", str(folder / "artifacts"))
    try:
        ctx.store.deployments.create("bench", "models:/bench/1")
        sink = ParquetSink("bench", ctx, replica="bench-0")
        t0 = time.perf_counter()
        for start in range(0, table.num_rows, LOG_BATCH):
            sink.write(log_rows(table, start, min(start + LOG_BATCH, table.num_rows)))
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        log_labels(table["request_id"].to_pylist(), labels, deployment="bench", ctx=ctx)
        labels_s = time.perf_counter() - t0
        files = ctx.store.predictions.log_files("bench")
        size = sum(f.size or 0 for f in files)

        def run() -> Any:
            return evaluate_window("bench", reference=stored, estimator=estimator, ctx=ctx)

        timing, result = timed(run, repeat)
        read_timing, window = timed(lambda: read_window("bench", ctx=ctx), 1)
        no_labels, _ = timed(lambda: evaluate_window("bench", reference=stored, estimator=estimator, labels=False, ctx=ctx), 1)
        out = {**timing, "write_s": write_s, "labels_write_s": labels_s, "files": len(files), "bytes": size,
               "read_window_s": read_timing["best_s"], "without_labels_s": no_labels["best_s"],
               "rows_read": window.num_rows}  # fmt: skip
        out.update(summarise(result))
        if profile:
            out["cprofile"] = profiled(run)
        return out
    finally:
        ctx.close()
        shutil.rmtree(folder, ignore_errors=True)


# peers --------------------------------------------------------------------------------------------------------------


def peer_python(name: str, install: bool) -> tuple[str | None, str]:
    """The peer venv's python (``.bench-venv/<name>``), created on first use; (None, why) when it does not install
    or import here."""
    venv = VENVS / name
    python = str(venv / "bin" / "python")

    def imports() -> str:
        if not Path(python).exists():
            return f"no {venv}"
        check = subprocess.run([python, "-c", f"import {name}"], capture_output=True, text=True, check=False)
        return "" if check.returncode == 0 else f"{name} does not import: " + check.stderr.strip().splitlines()[-1][-300:]

    why = imports()
    if not why:
        return python, ""
    if not install:
        return None, f"{why} (run without --no-install to create it)"
    console.print(f"creating {venv}: pip install {' '.join(PEER_PACKAGES[name])} (its own venv, once)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", *PEER_PACKAGES[name]]
    done = subprocess.run(pip, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"pip install {' '.join(PEER_PACKAGES[name])} failed: " + done.stderr.strip()[-500:]
    why = imports()
    return (None, why) if why else (python, "")


def run_peer(python: str, script: str, *args: str) -> dict[str, Any] | str:
    done = subprocess.run([python, str(PEERS / script), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return done.stderr.strip()[-2000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def write_parquet(table: Any, path: Path) -> str:
    import pyarrow.parquet as pq

    pq.write_table(table.replace_schema_metadata(None), path)
    return str(path)


def evidently(python: str, window: Any, reference: Any, labels: np.ndarray, peer_rows: int | None) -> dict[str, Any] | str:
    import pyarrow as pa

    folder = Path(tempfile.mkdtemp(prefix="keel-bench-evidently-"))
    try:
        cur = window.select([*FEATURES, "output", "proba1"]).append_column("label", pa.array(labels))
        ref = reference.select([*FEATURES, "output", "proba1", "label"])
        if peer_rows:
            cur, ref = cur.slice(0, peer_rows), ref.slice(0, peer_rows)
        spec = json.dumps({"numeric": NUMERIC, "categorical": CATEGORICAL, "target": "label", "prediction": "output",
                           "proba": "proba1"})  # fmt: skip
        return run_peer(python, "evidently_monitoring.py", write_parquet(ref, folder / "reference.parquet"),
                        write_parquet(cur, folder / "current.parquet"), spec)  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def nannyml(python: str, reference: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> dict[str, Any] | str:
    import pyarrow as pa

    folder = Path(tempfile.mkdtemp(prefix="keel-bench-nannyml-"))
    try:
        paths = []
        for name, data in (("reference", reference), ("analysis", test)):
            table = pa.table({"proba1": data["proba1"], "output": data["output"], "label": data["label"]})
            paths.append(write_parquet(table, folder / f"{name}.parquet"))
        return run_peer(python, "nannyml_cbpe.py", *paths)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# (3) merging hourly profiles ----------------------------------------------------------------------------------------


def merge_day(table: Any, repeat: int) -> dict[str, Any]:
    from keel.data.profiling import GRID, _sorted_quantiles, compute_profile
    from keel.monitor import Profile, merge_profiles

    day = table.select([*FEATURES, "output"])
    times = table["time"].to_numpy()
    bounds = np.searchsorted(times, times[0] + np.arange(HOURS + 1) * 3_600_000)
    bounds[-1] = table.num_rows
    hours = [day.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    t0 = time.perf_counter()
    hourly = [Profile.from_table(h) for h in hours]
    hourly_s = time.perf_counter() - t0
    merge_timing, merged = timed(lambda: merge_profiles(hourly), repeat)
    sketch_timing, whole = timed(lambda: Profile.from_table(day), repeat)
    exact_timing, exact = timed(lambda: compute_profile(day), repeat)

    def errors(profile: Any) -> dict[str, Any]:
        worst_rank, worst_value, worst_inner = (0.0, "", 0.0), (0.0, "", 0.0), (0.0, "", 0.0)
        for name in NUMERIC:
            values = day[name].to_numpy(zero_copy_only=False)
            s = np.sort(values[~np.isnan(values)])
            grid = np.asarray(profile.columns[name].to_drift(profile.rows)["grid"])
            mid_rank = (np.searchsorted(s, grid, "left") + np.searchsorted(s, grid, "right")) / 2 / s.size
            rank_error = np.abs(mid_rank - GRID)
            value_error = np.abs(grid - _sorted_quantiles(s, GRID)) / s.std()
            inner = slice(10, 991)  # the 1%..99% quantiles: the tails of a skewed column are sparse in value
            i, j, k = int(rank_error.argmax()), int(value_error.argmax()), int(value_error[inner].argmax()) + 10
            if rank_error[i] > worst_rank[0]:
                worst_rank = (float(rank_error[i]), name, float(GRID[i]))
            if value_error[j] > worst_value[0]:
                worst_value = (float(value_error[j]), name, float(GRID[j]))
            if value_error[k] > worst_inner[0]:
                worst_inner = (float(value_error[k]), name, float(GRID[k]))
        category = 0.0
        for name in CATEGORICAL:
            got = profile.columns[name].frequencies()
            want = dict(exact["columns"][name]["frequencies"]) if "frequencies" in exact["columns"][name] else {}
            for key in set(got) | set(want):
                category = max(category, abs(got.get(key, 0) - want.get(key, 0)) / table.num_rows)
        return {"max_rank_error": worst_rank, "max_value_error_std": worst_value, "max_value_error_std_1_99": worst_inner,
                "max_category_share_error": category}  # fmt: skip

    bound = float(merged.columns[NUMERIC[0]].kll.normalized_rank_error(False))
    assert merged.rows == table.num_rows
    return {
        "hours": HOURS, "rows_per_hour_min": int(np.diff(bounds).min()), "hourly_profiles_s": hourly_s,
        "merge": merge_timing, "recompute_sketch": sketch_timing, "recompute_exact": exact_timing,
        "merged_vs_exact": errors(merged), "day_sketch_vs_exact": errors(whole), "kll_rank_error_bound": bound,
    }  # fmt: skip


# (4) estimated performance ------------------------------------------------------------------------------------------


def shifted_test(world: World, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Fresh undrifted rows, each kept with a probability that peaks where the model is unsure (proba1 near 0.5)."""
    rng = np.random.default_rng(seed)
    pool = world.draw(rng, rows, drifted=False)
    world.predict(pool, rng)
    keep = rng.random(rows) < np.exp(-(((pool["proba1"] - 0.5) / 0.15) ** 2))
    return {k: v[keep] for k, v in pool.items()}


def estimation(reference: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> dict[str, Any]:
    from keel.monitor import Estimator, realised_metrics

    t0 = time.perf_counter()
    estimator = Estimator().fit(reference["proba1"], reference["label"])
    estimated = estimator.estimate(test["proba1"], test["output"])
    seconds = time.perf_counter() - t0
    realised = realised_metrics(test["label"], test["output"], test["proba1"])
    at_reference = realised_metrics(reference["label"], reference["output"], reference["proba1"])
    uncalibrated = Estimator().estimate(test["proba1"], test["output"])
    return {
        "reference_rows": int(reference["label"].size), "test_rows": int(test["label"].size),
        "positive_share_reference": float(reference["label"].mean()), "positive_share_test": float(test["label"].mean()),
        "seconds": seconds, "realised": realised, "estimated": estimated, "reference_metrics": at_reference,
        "uncalibrated": uncalibrated,
    }  # fmt: skip


# printing -----------------------------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "[bold green]PASS[/]" if ok else "[bold red]FAIL[/]"


def columns_text(found: list[str]) -> str:
    injected = [c for c in DRIFTS if c in found]
    extra = [c for c in found if c not in DRIFTS]
    missed = [c for c in DRIFTS if c not in found]
    text = f"{len(injected)}/{len(DRIFTS)} injected"
    if missed:
        text += f", missed {', '.join(missed)}"
    if extra:
        text += f", {len(extra)} stable flagged ({', '.join(extra)})"
    return text


def print_window(r: dict[str, Any], rows: int) -> None:
    k, log, ev = r["keel"], r.get("keel_log"), r.get("evidently")
    table = Table(title=f"(1)+(2) one window of {rows:,} predictions x 20 features: drift + quality + performance + health")
    for col in ("tool", "seconds", "Evidently / this", "drifted columns"):
        table.add_column(col, justify="left" if col in ("tool", "drifted columns") else "right")
    ev_s = ev["seconds_total"] if isinstance(ev, dict) else None
    ratio = lambda s: f"{ev_s / s:,.0f}x" if ev_s and ev.get("rows") == [rows, rows] else "—"  # noqa: E731
    label = f"keel evaluate_table (best of {len(k['runs_s'])}; median {k['median_s']:.3f})"
    table.add_row(label, f"{k['best_s']:.3f}", ratio(k["best_s"]), columns_text(k["drifted"]))
    table.add_row("  of which Profile.from_table (one pass over the rows)", f"{k['profile_only_s']:.3f}", "", "")
    if isinstance(log, dict):
        label = f"keel evaluate_window from the prediction log (best of {len(log['runs_s'])}; median {log['median_s']:.3f})"
        table.add_row(label, f"{log['best_s']:.3f}", ratio(log["best_s"]), columns_text(log["drifted"]))
        table.add_row("  of which read_window (Parquet files -> table)", f"{log['read_window_s']:.3f}", "", "")
        table.add_row("  the same without labels (labels=False)", f"{log['without_labels_s']:.3f}", "", "")
    if isinstance(ev, dict):
        capped = "" if ev["rows"] == [rows, rows] else f" [yellow](rows capped at {ev['rows'][1]:,}: no ratio)[/]"
        table.add_row(
            f"Evidently {ev['version']}: DataDriftPreset{capped}", f"{ev['drift_s']:.1f}", "", columns_text(ev["drifted"])
        )
        table.add_row(f"Evidently {ev['version']}: ClassificationPreset", f"{ev['classification_s']:.1f}", "", "")
        table.add_row("Evidently: both presets", f"{ev_s:.1f}", "1x", "")
    console.print(table)
    console.print(
        f"keel found drifted: {', '.join(k['drifted'])}"
        + (f"; Evidently: {', '.join(ev['drifted'])}" if isinstance(ev, dict) else "")
    )
    detail = Table(
        title="(1) per injected drift: keel's decisive test statistic" + (" and Evidently's" if isinstance(ev, dict) else "")
    )
    for col in ("column", "injected", "keel", *(["Evidently"] if isinstance(ev, dict) else [])):
        detail.add_column(col)
    shown = list(DRIFTS) + [
        c for c in FEATURES if c not in DRIFTS and (c in k["drifted"] or (isinstance(ev, dict) and c in ev["drifted"]))
    ]
    for c in shown:
        s = k["scores"][c]
        cells = [c, DRIFTS.get(c, "none (stable)"), f"{s['test']} {s['statistic']:.3f} {'drifted' if s['drifted'] else '-'}"]
        if isinstance(ev, dict):
            e = ev["columns"].get(c)
            cells.append(f"{e['method']} {e['score']:.3f} {'drifted' if e['drifted'] else '-'}" if e else "—")
        detail.add_row(*cells)
    console.print(detail)
    perf = Table(title="(1) the window's performance and health as keel reports them")
    for col in ("", *METRICS):
        perf.add_column(col, justify="right")
    for kind in ("realised", "estimated"):
        values = k[kind] or {}
        perf.add_row(f"keel {kind}", *(f"{values.get(m) or float('nan'):.4f}" for m in METRICS))
    if isinstance(ev, dict):
        perf.add_row("Evidently ClassificationPreset", *(f"{ev['classification'].get(m, float('nan')):.4f}" for m in METRICS))
    console.print(perf)
    h = k["health"]
    console.print(
        f"health: {h['rows']:,.0f} rows, {h['requests']:,.0f} requests, {h['throughput_per_s']:.1f}/s, latency p50 "
        f"{h['latency_p50_ms']:.3f} ms, p99 {h['latency_p99_ms']:.3f} ms; quality: largest missing share "
        f"{k['quality_max_missing_share']:.2%}, largest out-of-range share {k['quality_max_out_of_range_share']:.2%}; "
        f"{k['values']} monitored values. Reference profile (compute_profile, stored once): {k['reference_profile_s']:.2f} s."
    )
    if isinstance(log, dict):
        console.print(
            f"prediction log: {log['files']} Parquet files, {log['bytes'] / 2**20:,.1f} MiB, {log['rows_read']:,} rows read "
            f"back (setup, not timed: writing them {log['write_s']:.1f} s through ParquetSink, labels "
            f"{log['labels_write_s']:.1f} s)."
        )
    elif log:
        console.print(f"[red]prediction-log path failed[/]: {log}")


def print_merge(m: dict[str, Any]) -> None:
    table = Table(title=f"(3) a day from {m['hours']} hourly profiles vs recomputed from its rows")
    for col in ("how", "seconds", "max rank error", "max |Δ value| / std", "same, 1%-99% quantiles", "max Δ category share"):
        table.add_column(col, justify="left" if col == "how" else "right")

    def err(e: dict[str, Any]) -> list[str]:
        r, v, i = e["max_rank_error"], e["max_value_error_std"], e["max_value_error_std_1_99"]
        return [f"{r[0]:.4%} ({r[1]} @ q{r[2]:.3f})", f"{v[0]:.4f} ({v[1]} @ q{v[2]:.3f})", f"{i[0]:.4f} ({i[1]} @ q{i[2]:.3f})",
                f"{e['max_category_share_error']:.2e}"]  # fmt: skip

    table.add_row("merge_profiles of 24 hourly Profiles (best)", f"{m['merge']['best_s']:.4f}", *err(m["merged_vs_exact"]))
    table.add_row(
        "Profile.from_table of the day (KLL, best)", f"{m['recompute_sketch']['best_s']:.3f}", *err(m["day_sketch_vs_exact"])
    )
    table.add_row(
        "compute_profile of the day (exact, best)", f"{m['recompute_exact']['best_s']:.3f}", "0 (reference)", "0", "0", "0"
    )
    console.print(table)
    console.print(
        f"the 24 hourly profiles were made as the hours passed ({m['hourly_profiles_s']:.2f} s in all, >= "
        f"{m['rows_per_hour_min']:,} rows each); errors are against the exact sorted values of the day (rank: the exact "
        f"normalized rank of the merged grid quantile vs its grid point); KLL k=1000 rank error bound "
        f"(DataSketches, 99% confidence): {m['kll_rank_error_bound']:.4%}."
    )


def print_estimation(e: dict[str, Any], nm: dict[str, Any] | str | None) -> None:
    table = Table(title=f"(4) performance before labels on a covariate-shifted test set ({e['test_rows']:,} rows; reference "
                        f"{e['reference_rows']:,} labelled rows)")  # fmt: skip
    table.add_column("")
    for m in METRICS:
        table.add_column(m, justify="right")
        table.add_column("|error|", justify="right")
    real = e["realised"]

    def row(label: str, values: dict[str, Any]) -> None:
        cells = []
        for m in METRICS:
            v = values.get(m)
            cells += ["—", ""] if v is None else [f"{v:.4f}", f"{abs(v - real[m]):.4f}"]
        table.add_row(label, *cells)

    table.add_row("realised (labels)", *[c for m in METRICS for c in (f"{real[m]:.4f}", "")])
    row("keel Estimator (CBPE, isotonic calibration)", e["estimated"])
    if isinstance(nm, dict):
        row(f"NannyML {nm['version']} CBPE", nm["estimated"])
    row("no estimate: the reference's realised metrics", e["reference_metrics"])
    row("keel without calibration (raw proba1)", e["uncalibrated"])
    console.print(table)
    note = (f"positive share: reference {e['positive_share_reference']:.3f}, test {e['positive_share_test']:.3f}; "
            f"keel fit + estimate {e['seconds']:.3f} s")  # fmt: skip
    if isinstance(nm, dict):
        note += f"; NannyML fit {nm['fit_s']:.2f} s + estimate {nm['estimate_s']:.2f} s"
    console.print(note)
    if isinstance(nm, str):
        console.print(f"[yellow]NannyML not run[/]: {nm}")


def print_summary(results: dict[str, Any]) -> dict[str, bool | None]:
    k, log, ev, m, e = (results.get(x) for x in ("keel", "keel_log", "evidently", "merge", "estimation"))
    rows: list[tuple[str, str, bool | None]] = []
    rows.append((f"(1) evaluate_table on {results['rows']:,} rows <= {WINDOW_TARGET_S:g} s", f"{k['best_s']:.3f} s",
                 k["best_s"] <= WINDOW_TARGET_S))  # fmt: skip
    if isinstance(log, dict):
        rows.append((f"(1) evaluate_window from the prediction log <= {WINDOW_TARGET_S:g} s", f"{log['best_s']:.3f} s",
                     log["best_s"] <= WINDOW_TARGET_S))  # fmt: skip
    rows.append(("(1) keel finds exactly the injected drifts", columns_text(k["drifted"]), set(k["drifted"]) == set(DRIFTS)))
    full = isinstance(ev, dict) and ev["rows"] == [results["rows"], results["rows"]]
    ratio = ev["seconds_total"] / k["best_s"] if full else None
    rows.append((f"(2) >= {EVIDENTLY_RATIO_TARGET:g}x faster than Evidently's drift + classification presets",
                 f"{ratio:,.0f}x" if ratio else "n/a (Evidently not run on the full window)",
                 None if ratio is None else ratio >= EVIDENTLY_RATIO_TARGET))  # fmt: skip
    if isinstance(ev, dict) and isinstance(log, dict) and full:
        log_ratio = ev["seconds_total"] / log["best_s"]
        rows.append(("(2) the same from the prediction log", f"{log_ratio:,.0f}x", log_ratio >= EVIDENTLY_RATIO_TARGET))
    same = set(ev["drifted"]) == set(k["drifted"]) if isinstance(ev, dict) else None
    rows.append(
        ("(2) the same drifted columns as Evidently", columns_text(ev["drifted"]) if isinstance(ev, dict) else "n/a", same)
    )
    rank = m["merged_vs_exact"]["max_rank_error"][0]
    bound = m["kll_rank_error_bound"]
    rows.append(("(3) merged day's quantiles within the KLL rank error bound", f"{rank:.4%} (bound {bound:.4%})", rank <= bound))
    merge_s, exact_s = m["merge"]["best_s"], m["recompute_exact"]["best_s"]
    rows.append(("(3) merging faster than recomputing (exact)", f"{merge_s:.4f} s vs {exact_s:.3f} s", merge_s < exact_s))
    worst = max(abs(e["estimated"][x] - e["realised"][x]) for x in METRICS)
    rows.append((f"(4) keel's estimates within {ESTIMATE_ERROR_TARGET:g} of realised ({', '.join(METRICS)})",
                 f"largest |error| {worst:.4f}", worst <= ESTIMATE_ERROR_TARGET))  # fmt: skip
    table = Table(title="targets (issue 11, bench/monitoring.py)")
    for col in ("target", "measured", "verdict"):
        table.add_column(col)
    for label, measured, ok in rows:
        table.add_row(label, measured, verdict(ok))
    console.print(table)
    return {label: ok for label, _, ok in rows}


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# main ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the window")
    parser.add_argument("--reference-rows", type=int, default=None, help="rows of the reference frame (default: --rows)")
    parser.add_argument("--repeat", type=int, default=3, help="keel timings: best and median of this many runs")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--no-install", action="store_true", help="use the peers' venvs only if they exist")
    parser.add_argument("--peer-rows", type=int, default=None, help="cap the rows Evidently gets (no ratio then)")
    parser.add_argument("--no-log", action="store_true", help="skip the prediction-log path")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of evaluate_table and evaluate_window")
    parser.add_argument("--cbpe-reference-rows", type=int, default=100_000, help="labelled reference rows for (4)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="sklearn")
    start = time.perf_counter()
    rows, reference_rows = args.rows, args.reference_rows or args.rows
    results: dict[str, Any] = {"rows": rows, "reference_rows": reference_rows, "features": len(FEATURES),
                               "drifts": DRIFTS, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}  # fmt: skip
    console.print(
        f"[bold]keel monitoring[/] — window {rows:,} rows x {len(FEATURES)} features ({len(NUMERIC)} numeric, "
        f"{len(CATEGORICAL)} categorical) over {HOURS} h, reference {reference_rows:,} rows, drift injected into "
        f"{', '.join(DRIFTS)}"
    )

    t0 = time.perf_counter()
    world = World(SEED)
    rng = np.random.default_rng(SEED + 1)
    ref_data = world.draw(rng, reference_rows, drifted=False)
    world.fit_scaling(ref_data)
    world.predict(ref_data, rng)
    win_data = world.draw(rng, rows, drifted=True)
    world.predict(win_data, rng)
    reference = reference_table(ref_data)
    window = window_table(win_data, 1_790_000_000_000, rng)
    labels = win_data["label"].tolist()
    results["data_s"] = time.perf_counter() - t0
    console.print(f"data made in {results['data_s']:.1f} s")

    console.print("[bold](1)[/] keel evaluate_table on the window")
    keel = keel_window(window, reference, labels, args.repeat, args.profile)
    results["keel"] = keel
    if not args.no_log:
        console.print(f"[bold](1)[/] keel evaluate_window on the prediction log ({rows // LOG_BATCH} Parquet files)")
        try:
            results["keel_log"] = keel_log(window, labels, keel["_stored"], keel["_estimator"], args.repeat, args.profile)
        except Exception as exc:  # noqa: BLE001  # report, and go on with the other workloads
            results["keel_log"] = f"{type(exc).__name__}: {exc}"

    nm_python: str | None = None
    if not args.no_peer:
        ev_python, why = peer_python("evidently", not args.no_install)
        if ev_python:
            console.print(
                f"[bold](2)[/] Evidently's DataDriftPreset and ClassificationPreset on "
                f"{args.peer_rows or rows:,} rows each (this takes minutes at 1M rows: that is the point)"
            )
            results["evidently"] = evidently(ev_python, window, reference, win_data["label"], args.peer_rows)
            if isinstance(results["evidently"], str):
                console.print(f"[red]Evidently failed[/]: {results['evidently']}")
        else:
            results["evidently"] = why
            console.print(f"[yellow]Evidently not run[/]: {why}")
        nm_python, why = peer_python("nannyml", not args.no_install)
        if nm_python is None:
            results["nannyml"] = why

    console.print(f"[bold](3)[/] {HOURS} hourly profiles merged into a day vs the day recomputed")
    results["merge"] = merge_day(window, args.repeat)

    console.print("[bold](4)[/] estimated vs realised performance on a covariate-shifted test set")
    test = shifted_test(world, rows, SEED + 2)
    cbpe_reference = {k: v[: args.cbpe_reference_rows] for k, v in ref_data.items()}
    results["estimation"] = estimation(cbpe_reference, test)
    if nm_python:
        results["nannyml"] = nannyml(nm_python, cbpe_reference, test)
    results["total_s"] = time.perf_counter() - start

    print_window(results, rows)
    print_merge(results["merge"])
    print_estimation(results["estimation"], results.get("nannyml"))
    for name in ("keel", "keel_log"):
        found = results.get(name)
        if isinstance(found, dict) and "cprofile" in found:
            console.print(f"[bold]cProfile of {name}[/] (cumulative)")
            print(found["cprofile"])
    results["targets"] = print_summary(results)
    console.print(
        f"Whole benchmark: {results['total_s']:.0f} s (load average at start {results['load_average']:.2f} on "
        f"{results['cpus']} CPUs; keel timings are best of {args.repeat} after a warm-up, Evidently's one run after a warm-up)."
    )
    print(json.dumps(jsonable(results), default=float))


if __name__ == "__main__":
    main()
