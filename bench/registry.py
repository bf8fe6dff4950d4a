"""Registry benchmark: register, load and per-row predict of a scikit-learn pipeline, native and ONNX, against MLflow.

    python bench/registry.py              # keel, and MLflow if its venv exists (.bench-venv/mlflow)
    python bench/registry.py --no-peer    # keel only
    python bench/registry.py --install-peers  # first create MLflow's own venv (as bench/tracking.py does)
    python bench/registry.py --profile    # also cProfile keel's validated per-row predict

Workload (issue text): "Register + load time for a scikit-learn pipeline; predict latency per
single row for the native flavor and the ONNX export (ONNX Runtime should be >= 10x faster per
row than scikit-learn here: about 4 µs against 86 µs), and the same done through MLflow's
pyfunc (about 1.1 ms per row here) in the same invocation when installed."

The model: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)) on scikit-learn's
breast-cancer data (569 rows x 30 float columns, as a DataFrame; 75/25 stratified split, seed 0).
  (1) register: median of --registrations registrations of the same model under different names
      (input_example = 5 rows: keel saves with skops, checks it loads back, infers the signature);
      load: median of --loads loads (hash verified, deserialised); the ONNX export once (with its
      parity check on the 143 held-out rows) and the ONNX version's load
  (2) per-row predict_proba latency, µs: the median of --rows single-row calls (perf_counter_ns)
      after --warmup untimed ones, always on the same held-out row:
        scikit-learn (raw)        the estimator keel loaded, on a one-row DataFrame
        keel native (validated)   LoadedModel.predict_proba(one-row DataFrame): signature check + the above
        ONNX Runtime (raw)        keel's OnnxModel.predict_proba(one float32 row): the session, nothing else
        keel ONNX (validated)     LoadedModel.predict_proba(one-row DataFrame) on the ONNX version
  (3) MLflow, in its own venv (its pyarrow<26 pin clashes with keel's) on SQLite, in the same
      invocation: the same pipeline (same data and seed) logged with mlflow.sklearn.log_model
      (registered_model_name, the same input_example, pyfunc_predict_fn="predict_proba"; again with
      pip_requirements given, which skips its requirement inference in a subprocess),
      loaded with mlflow.pyfunc.load_model, pyfunc_model.predict(one-row DataFrame): schema
      enforcement + predict_proba, the counterpart of keel native (validated).

The issue's per-row figures (86 µs scikit-learn, 4 µs ONNX Runtime, 1.1 ms pyfunc) came from
another machine and versions; with scikit-learn 1.9 and pandas 3 the pipeline's own input checks
on a one-row DataFrame dominate its per-row time, so the scikit-learn/ONNX ratio is far above 10x.
MLflow's venv reports its own raw scikit-learn per-row time as a control (same versions or not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["DO_NOT_TRACK"] = "true"

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench-venv" / "mlflow"
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "mlflow_registry.py"
SEED = 0
ONNX_TARGET = 10.0  # ONNX Runtime >= 10x faster per row than scikit-learn
console = Console(width=None if os.isatty(1) else 130)  # wide enough for the tables when piped


def per_call_us(fn: Callable[[], Any], calls: int, warmup: int) -> float:
    """Median of ``calls`` timed calls (perf_counter_ns) after ``warmup`` untimed ones, in µs."""
    for _ in range(warmup):
        fn()
    timings = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        timings.append(time.perf_counter_ns() - t0)
    return statistics.median(timings) / 1000


def median_ms(fn: Callable[[int], Any], times: int) -> tuple[float, Any]:
    """Median wall time of ``fn(i)`` for i in range(times), in ms, and the last result."""
    timings, result = [], None
    for i in range(times):
        t0 = time.perf_counter()
        result = fn(i)
        timings.append(time.perf_counter() - t0)
    return statistics.median(timings) * 1000, result


def workload(seed: int) -> tuple[Any, Any, Any]:
    """The fitted pipeline, its training frame and the held-out frame."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    return model, X_train, X_test


def keel_registry(registrations: int, loads: int, rows: int, warmup: int, seed: int, profile: bool) -> dict[str, Any]:
    """The keel side, in the current working folder (its embedded store is ./.keel)."""
    import keel.registry as registry

    model, X_train, X_test = workload(seed)
    example = X_train.head(5)
    out: dict[str, Any] = {"train_rows": len(X_train), "holdout_rows": len(X_test), "features": X_train.shape[1]}

    registry.load(registry.register(model, "warmup", input_example=example).uri)  # not timed: store, migrations, skops
    out["register_ms"], version = median_ms(
        lambda i: registry.register(model, f"breast-cancer-{i}", input_example=example), registrations
    )
    out["load_ms"], loaded = median_ms(lambda _: registry.load(version.uri), loads)
    out["format"] = version.signature.get("format")
    out["artifact_kb"] = version.size / 1024

    t0 = time.perf_counter()
    onnx_version = registry.export_onnx(version.uri, X_test)
    out["export_onnx_ms"] = (time.perf_counter() - t0) * 1000
    out["onnx_parity"] = onnx_version.signature["parity"]
    out["onnx_load_ms"], onnx_loaded = median_ms(lambda _: registry.load(onnx_version.uri), loads)
    out["onnx_kb"] = onnx_version.size / 1024

    row = X_test.iloc[[0]]
    row32 = row.to_numpy(dtype=np.float32)
    raw, onnx = loaded.model, onnx_loaded.model
    expected = model.predict_proba(row)
    for name, got in (
        ("keel native", loaded.predict_proba(row)),
        ("ONNX raw", onnx.predict_proba(row32)),
        ("keel ONNX", onnx_loaded.predict_proba(row)),
    ):
        assert np.allclose(got, expected, atol=1e-5), (name, got, expected)

    paths: dict[str, Callable[[], Any]] = {
        "sklearn_us": lambda: raw.predict_proba(row),
        "keel_native_us": lambda: loaded.predict_proba(row),
        "onnx_us": lambda: onnx.predict_proba(row32),
        "keel_onnx_us": lambda: onnx_loaded.predict_proba(row),
    }
    for key, fn in paths.items():
        out[key] = per_call_us(fn, rows, warmup)
    out["rows"] = rows
    if profile:
        out["profile"] = profile_validated(loaded, row, rows)
    return out


def profile_validated(loaded: Any, row: Any, calls: int, top: int = 15) -> list[dict[str, Any]]:
    """cProfile of keel's validated per-row predict: the functions with the most cumulative time, per row."""
    import cProfile
    import pstats
    import sysconfig

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        loaded.predict_proba(row)
    profiler.disable()
    entries = pstats.Stats(profiler).stats.items()  # type: ignore[attr-defined]
    ranked = sorted(entries, key=lambda item: item[1][3], reverse=True)[:top]
    prefixes = [str(ROOT / "src") + "/", sysconfig.get_paths()["purelib"] + "/", sysconfig.get_paths()["stdlib"] + "/"]

    def short(file: str) -> str:
        for prefix in prefixes:
            file = file.removeprefix(prefix)
        return file

    return [
        {
            "function": f"{short(file)}:{line}({name})",
            "own_us": tottime * 1e6 / calls,
            "cumulative_us": cumtime * 1e6 / calls,
            "calls_per_row": ncalls / calls,
        }
        for (file, line, name), (_, ncalls, tottime, cumtime, _) in ranked
    ]


def mlflow_python() -> str | None:
    candidate = PEER_VENV / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def install_peers() -> None:
    console.print(f"creating {PEER_VENV} with mlflow (its own venv: its pins clash with keel's)")
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "mlflow"], check=True)


def mlflow_registry(python: str, folder: Path, registrations: int, loads: int, rows: int, warmup: int, seed: int) -> Any:
    """The peer script in MLflow's venv, in ``folder`` (SQLite tracking, ./mlruns artifacts); its JSON or its stderr."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [python, str(PEER_SCRIPT), str(registrations), str(loads), str(rows), str(warmup), str(seed)],
        capture_output=True, text=True, check=False, cwd=folder, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        return done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _vs(peer: float, keel: float) -> str:
    ratio = peer / keel
    return f"{ratio:,.1f}x faster" if ratio >= 1 else f"{1 / ratio:,.1f}x slower"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registrations", type=int, default=10, help="registrations timed (median), each tool")
    parser.add_argument("--loads", type=int, default=10, help="loads timed (median), each tool")
    parser.add_argument("--rows", type=int, default=2000, help="single-row predict calls timed (median), each path")
    parser.add_argument("--warmup", type=int, default=200, help="untimed single-row calls before each path")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--install-peers", action="store_true", help="create MLflow's venv first")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--profile", action="store_true", help="cProfile keel's validated per-row predict")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="sklearn")
    if args.install_peers and not (PEER_VENV / "bin" / "python").exists():
        install_peers()

    start = time.perf_counter()
    home = os.getcwd()
    folder = Path(tempfile.mkdtemp(prefix="keel-bench-registry-"))
    results: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    console.print(
        f"[bold]keel registry[/] — scikit-learn pipeline (StandardScaler + LogisticRegression, breast cancer), "
        f"{args.registrations} registrations, {args.loads} loads, {args.rows:,} single-row calls per path, in {folder}"
    )
    try:
        os.chdir(folder)
        import onnxruntime
        import pandas
        import sklearn

        results["keel"] = keel_registry(args.registrations, args.loads, args.rows, args.warmup, args.seed, args.profile)
        results["versions"] = {"scikit-learn": sklearn.__version__, "onnxruntime": onnxruntime.__version__,
                               "pandas": pandas.__version__, "numpy": np.__version__}  # fmt: skip
    finally:
        os.chdir(home)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    python = None if args.no_peer else mlflow_python()
    if python:
        console.print(f"[bold]MLflow[/] (SQLite, pyfunc) via {python}")
        peer_folder = Path(tempfile.mkdtemp(prefix="mlflow-bench-registry-"))
        try:
            found = mlflow_registry(python, peer_folder, args.registrations, args.loads, args.rows, args.warmup, args.seed)
        finally:
            if not args.keep:
                shutil.rmtree(peer_folder, ignore_errors=True)
        if isinstance(found, str):
            console.print(f"[red]MLflow run failed[/]: {found}")
        else:
            results["mlflow"] = found
    elif not args.no_peer:
        console.print(f"[yellow]MLflow not found ({PEER_VENV}): keel only[/]")
    results["total_s"] = time.perf_counter() - start

    k, m = results["keel"], results.get("mlflow")
    table = Table(title=f"(1) register + load, ms (median of {args.registrations} / {args.loads})")
    table.add_column("operation")
    table.add_column("keel", justify="right")
    if m:
        table.add_column(f"MLflow {m['version']}", justify="right")
        table.add_column("keel vs MLflow", justify="right", style="bold green")
    dash = ["—", "—"] if m else []
    table.add_row(
        f"register (input_example: 5 rows; keel {k['format']}, {k['artifact_kb']:.1f} KB)",
        f"{k['register_ms']:.1f}",
        *([f"{m['register_ms']:.1f}", _vs(m["register_ms"], k["register_ms"])] if m else []),
    )
    if m:
        table.add_row(
            "  MLflow given pip_requirements (no inference subprocess)",
            f"{k['register_ms']:.1f}",
            f"{m['register_given_reqs_ms']:.1f}",
            _vs(m["register_given_reqs_ms"], k["register_ms"]),
        )
    table.add_row(
        "load (keel: hash verified; MLflow: pyfunc.load_model)",
        f"{k['load_ms']:.2f}",
        *([f"{m['load_ms']:.2f}", _vs(m["load_ms"], k["load_ms"])] if m else []),
    )
    parity = k["onnx_parity"]
    table.add_row(
        f"export_onnx (parity on {parity['onnx_parity_rows']:.0f} rows, max diff {parity['onnx_max_proba_diff']:.1e})",
        f"{k['export_onnx_ms']:.1f}",
        *dash,
    )
    table.add_row(f"load the ONNX version ({k['onnx_kb']:.1f} KB, new session)", f"{k['onnx_load_ms']:.2f}", *dash)
    console.print(table)

    table = Table(title=f"(2) predict_proba on one row, µs per row (median of {args.rows:,} calls after {args.warmup} warm-up)")
    table.add_column("path")
    table.add_column("µs / row", justify="right")
    table.add_column("rows / s", justify="right")
    table.add_column("vs scikit-learn", justify="right", style="bold green")
    per_row = [
        ("scikit-learn (raw): pipeline.predict_proba(one-row DataFrame)", k["sklearn_us"]),
        ("keel native (validated): LoadedModel.predict_proba(one-row DataFrame)", k["keel_native_us"]),
        ("ONNX Runtime (raw): keel's OnnxModel.predict_proba(one float32 row)", k["onnx_us"]),
        ("keel ONNX (validated): LoadedModel.predict_proba(one-row DataFrame)", k["keel_onnx_us"]),
    ]
    if m:
        per_row.append((f"MLflow {m['version']} pyfunc: pyfunc_model.predict(one-row DataFrame)", m["pyfunc_us"]))
        per_row.append(("  (scikit-learn raw in MLflow's venv, control)", m["sklearn_us"]))
    for i, (label, us) in enumerate(per_row):
        table.add_row(label, f"{us:,.1f}", f"{1e6 / us:,.0f}", "—" if i == 0 else _vs(k["sklearn_us"], us))
    console.print(table)

    ratios = {
        "sklearn_over_onnx": k["sklearn_us"] / k["onnx_us"],
        "keel_validated_over_raw": k["keel_native_us"] / k["sklearn_us"],
        "keel_validation_overhead_us": k["keel_native_us"] - k["sklearn_us"],
        "keel_onnx_validated_over_raw": k["keel_onnx_us"] / k["onnx_us"],
        "keel_onnx_validation_overhead_us": k["keel_onnx_us"] - k["onnx_us"],
    }
    if m:
        ratios.update({
            "mlflow_over_keel_register": m["register_ms"] / k["register_ms"],
            "mlflow_given_reqs_over_keel_register": m["register_given_reqs_ms"] / k["register_ms"],
            "mlflow_over_keel_load": m["load_ms"] / k["load_ms"],
            "mlflow_pyfunc_over_keel_native": m["pyfunc_us"] / k["keel_native_us"],
            "mlflow_pyfunc_over_keel_onnx": m["pyfunc_us"] / k["keel_onnx_us"],
        })  # fmt: skip
    results["ratios"] = ratios
    met = ratios["sklearn_over_onnx"] >= ONNX_TARGET
    console.print(
        f"scikit-learn / ONNX Runtime per row: {ratios['sklearn_over_onnx']:,.1f}x "
        f"({k['sklearn_us']:,.1f} vs {k['onnx_us']:,.1f} µs; target >= {ONNX_TARGET:g}x: "
        + ("[green]met[/]" if met else "[red]missed[/]")
        + f"). keel validated / raw: native {ratios['keel_validated_over_raw']:.2f}x "
        f"(+{ratios['keel_validation_overhead_us']:,.0f} µs), ONNX {ratios['keel_onnx_validated_over_raw']:.1f}x "
        f"(+{ratios['keel_onnx_validation_overhead_us']:,.0f} µs)."
    )
    if m:
        console.print(
            f"keel against MLflow: register {_vs(m['register_ms'], k['register_ms'])} "
            f"({_vs(m['register_given_reqs_ms'], k['register_ms'])} when MLflow is given its pip requirements), "
            f"load {_vs(m['load_ms'], k['load_ms'])}; per row, keel native (validated) "
            f"{_vs(m['pyfunc_us'], k['keel_native_us'])} and keel ONNX (validated) {_vs(m['pyfunc_us'], k['keel_onnx_us'])} "
            f"than MLflow's pyfunc ({m['pyfunc_us']:,.0f} µs). "
            f"MLflow's scikit-learn {m['sklearn']} takes {m['sklearn_us']:,.0f} µs per raw row in its venv "
            f"(keel's {results['versions']['scikit-learn']}: {k['sklearn_us']:,.0f})."
        )
    if "profile" in k:
        title = "keel native (validated) per row under cProfile: top functions by cumulative time, µs per row (inflated)"
        table = Table(title=title)
        table.add_column("function")
        table.add_column("own", justify="right")
        table.add_column("cumulative", justify="right")
        table.add_column("calls / row", justify="right")
        for entry in k["profile"]:
            table.add_row(entry["function"], f"{entry['own_us']:.1f}", f"{entry['cumulative_us']:.1f}",
                          f"{entry['calls_per_row']:g}")  # fmt: skip
        console.print(table)
    v = results["versions"]
    console.print(
        f"scikit-learn {v['scikit-learn']}, pandas {v['pandas']}, numpy {v['numpy']}, onnxruntime {v['onnxruntime']}. "
        f"Whole benchmark: {results['total_s']:.0f} s (load average at start: {results['load_average']:.2f})."
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
