"""Data benchmark: keel's profiling, validation and drift against pandera and Evidently (same machine, same invocation).

    python bench/data.py                  # keel, pandera if installed, Evidently if its venv exists
    python bench/data.py --install-peers  # first create Evidently's own venv in .bench-venv/evidently

Workloads (issue text):
  (1) profile + validate 1,000,000 rows x 20 columns (15 float with a few NaNs, 5 string
      categories): seconds and peak memory; pandera validates the same frame with the same
      checks (lazy=True). Each tool runs in its own child process of this python, so peak
      memory (RSS above the loaded frame, from VmHWM reset before each phase) is its own.
  (2) drift on 100,000 rows x 25 columns (20 numeric, 5 categorical, 5 with injected
      drift): keel from a stored reference profile, keel from two DataFrames, and
      Evidently's DataDriftPreset; seconds, ratios and which columns each flagged.

The validation suite is keel's ``infer_suite`` on the data; pandera gets the same checks
(columns, dtype, nullability / missing share, range, allowed values, row count). keel's
inferred suite also has warn-level IQR outlier checks, which pandera has no built-in for:
they are timed in a separate row and left out of the ratio.

Evidently runs in its own virtual environment because it needs pandas < 3.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench-venv" / "evidently"
EQUIVALENT_KINDS = ("columns", "row_count", "type", "not_null", "max_missing", "range", "allowed_values")
SEED = 20240601


# ---------------------------------------------------------------------------------------------------------------- data


def validation_frame(rows: int, seed: int = SEED) -> Any:
    """15 float columns (normal, lognormal, uniform; 3 with ~0.1% NaN) and 5 string columns of 5 categories."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(15):
        if i % 3 == 0:
            values = rng.normal(10 * i, 1 + i, rows)
        elif i % 3 == 1:
            values = rng.lognormal(0, 0.5 + i / 20, rows)
        else:
            values = rng.uniform(-i, i * 3 + 1, rows)
        if i % 5 == 0:
            values[rng.random(rows) < 0.001] = np.nan
        data[f"num_{i:02d}"] = values
    categories = np.array(["red", "green", "blue", "black", "white"])
    for j in range(5):
        p = rng.dirichlet(np.full(5, 2.0))
        data[f"cat_{j}"] = categories[rng.choice(5, rows, p=p)]
    return pd.DataFrame(data)


DRIFTS = {
    "num_04": "mean +0.3 std",
    "num_08": "scale x1.5",
    "num_12": "normal -> uniform, same mean and std",
    "cat_1": "frequencies changed",
    "cat_3": "new category in 10% of rows",
}


def drift_frames(rows: int, seed: int = SEED) -> tuple[Any, Any]:
    """Reference and current frames (independent draws, fixed seeds) with drift injected into ``DRIFTS``.

    20 numeric columns (normal, lognormal, uniform, gamma; some with ~0.5% NaN), 5 categorical
    columns of 5 categories each.
    """
    import pandas as pd

    params = np.random.default_rng(seed)
    numeric = [(i % 4, float(params.uniform(-50, 50)), float(params.uniform(0.5, 20))) for i in range(20)]
    categorical = [params.dirichlet(np.full(5, 3.0)) for _ in range(5)]
    labels = np.array([f"c{k}" for k in range(5)])

    def draw(rng: np.random.Generator, current: bool) -> Any:
        data: dict[str, Any] = {}
        for i, (family, loc, scale) in enumerate(numeric):
            name = f"num_{i:02d}"
            if family == 0:
                values = rng.normal(loc, scale, rows)
            elif family == 1:
                values = loc + scale * rng.lognormal(0, 0.6, rows)
            elif family == 2:
                values = rng.uniform(loc, loc + 4 * scale, rows)
            else:
                values = loc + scale * rng.gamma(2.0, 1.0, rows)
            if current and name == "num_04":
                values = values + 0.3 * scale
            elif current and name == "num_08":
                values = loc + 1.5 * (values - loc)
            elif current and name == "num_12":
                half = scale * np.sqrt(3.0)
                values = rng.uniform(loc - half, loc + half, rows)
            if i % 3 == 2:
                values[rng.random(rows) < 0.005] = np.nan
            data[name] = values
        for j, p in enumerate(categorical):
            name = f"cat_{j}"
            if current and name == "cat_1":
                p = np.clip(p + np.array([0.12, -0.06, 0.06, -0.06, -0.06]), 0.02, None)
                p = p / p.sum()
            column = labels[rng.choice(5, rows, p=p)].astype(object)
            if current and name == "cat_3":
                column[rng.random(rows) < 0.10] = "c_new"
            data[name] = column.astype(str)
        return pd.DataFrame(data)

    return draw(np.random.default_rng(seed + 1), False), draw(np.random.default_rng(seed + 2), True)


# ----------------------------------------------------------------------------------------- child: peak memory per tool


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _release_free_memory() -> None:
    """Hand freed memory back to the OS (glibc heap, Arrow's pool), so RSS at a phase's start is live data only."""
    import ctypes
    import gc

    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    """Reset the peak-RSS watermark (Linux: /proc/self/clear_refs 5); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Peak:
    """Peak RSS above the RSS at entry, in MB (falls back to absolute ru_maxrss where VmHWM cannot be reset)."""

    def __enter__(self) -> Peak:
        _release_free_memory()
        self.resettable = _reset_peak()
        self.base = _status_kb("VmRSS") or 0
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kb("VmHWM") if self.resettable else None
        if peak is None:
            self.mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.absolute = True
        else:
            self.mb = (peak - self.base) / 1024
            self.absolute = False


def pandera_schema(suite: Any) -> Any:
    """The pandera schema with the same checks as a keel suite's (columns, dtype, nulls, range, categories, rows)."""
    import pandera.pandas as pa

    columns: dict[str, dict[str, Any]] = {}
    frame_checks = []
    for check in suite.checks:
        column = getattr(check, "column", None)
        spec = columns.setdefault(column, {"dtype": None, "nullable": True, "checks": []}) if column else None
        if check.kind == "columns":
            for name in check.names:
                columns.setdefault(name, {"dtype": None, "nullable": True, "checks": []})
        elif check.kind == "row_count":
            lo, hi = check.min, check.max
            frame_checks.append(pa.Check(lambda df, lo=lo, hi=hi: lo <= len(df) <= hi, name="row_count"))
        elif check.kind == "type":
            spec["dtype"] = {"float": "float64", "integer": "int64", "string": str, "bool": bool}[check.type]
        elif check.kind == "not_null":
            spec["nullable"] = False
        elif check.kind == "max_missing":
            share = check.max_share
            spec["checks"].append(pa.Check(lambda s, share=share: s.isna().mean() <= share, ignore_na=False, name="max_missing"))
        elif check.kind == "range":
            spec["checks"].append(pa.Check.in_range(check.min, check.max))
        elif check.kind == "allowed_values":
            spec["checks"].append(pa.Check.isin(list(check.values)))
        else:
            raise ValueError(f"no pandera equivalent for keel's {check.kind} check")
    schema_columns = {
        name: pa.Column(spec["dtype"], checks=spec["checks"], nullable=spec["nullable"]) for name, spec in columns.items()
    }
    return pa.DataFrameSchema(schema_columns, checks=frame_checks)


def _timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """Median and first (cold) time of ``repeat`` calls, and the last result."""
    timings, result = [], None
    for _ in range(max(1, repeat)):
        result = None
        t0 = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - t0)
    return statistics.median(timings), timings[0], result


def child(tool: str, rows: int, repeat: int) -> dict[str, Any]:
    """One tool's validation workload, in this (child) process; prints nothing, returns figures."""
    from keel.data import Suite, infer_suite

    df = validation_frame(rows)
    suite = infer_suite(df, name="bench")  # setup, not timed
    equivalent = Suite([c for c in suite.checks if c.kind in EQUIVALENT_KINDS], name="bench-equivalent")
    out: dict[str, Any] = {
        "rows": rows,
        "columns": df.shape[1],
        "frame_mb": df.memory_usage(deep=True).sum() / 2**20,
        "checks_equivalent": len(equivalent.checks),
        "checks_full": len(suite.checks),
    }
    if tool == "keel":
        from keel.data import validate
        from keel.data.frames import to_arrow
        from keel.data.profiling import compute_profile

        with Peak() as peak:
            out["profile_s"], out["profile_first_s"], profile = _timed(lambda: compute_profile(to_arrow(df)), repeat)
        out["profile_peak_mb"] = peak.mb
        assert profile["row_count"] == rows
        with Peak() as peak:
            out["validate_s"], out["validate_first_s"], result = _timed(lambda: validate(df, equivalent), repeat)
        out["validate_peak_mb"] = peak.mb
        out["passed"] = result.passed
        out["errors"] = [f"{r.kind}({r.column}): {r.message}" for r in result.errors]
        out["validate_full_s"], _, full = _timed(lambda: validate(df, suite), repeat)
        out["full_passed"] = full.passed
        out["full_warnings"] = len(full.warnings)
        out["peak_is_absolute"] = peak.absolute
    elif tool == "pandera":
        import pandera as pandera_pkg

        schema = pandera_schema(equivalent)
        with Peak() as peak:
            out["validate_s"], out["validate_first_s"], _ = _timed(lambda: schema.validate(df, lazy=True), repeat)
        out["validate_peak_mb"] = peak.mb
        out["passed"] = True  # validate(lazy=True) raises SchemaErrors otherwise
        out["version"] = pandera_pkg.__version__
        out["peak_is_absolute"] = peak.absolute
    else:
        raise ValueError(tool)
    return out


def run_child(tool: str, rows: int, repeat: int) -> dict[str, Any] | str:
    done = subprocess.run(
        [sys.executable, __file__, "--child", tool, "--rows", str(rows), "--repeat", str(repeat)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------------ drift


def keel_drift(reference: Any, current: Any, repeat: int) -> dict[str, Any]:
    from keel.data import drift
    from keel.data.frames import to_arrow
    from keel.data.profiling import compute_profile

    drift(reference.head(2000), current.head(2000))  # warm-up: scipy imports, not timed
    t0 = time.perf_counter()
    stored = compute_profile(to_arrow(reference))  # what dataset logging stores once; not part of the drift time
    profile_s = time.perf_counter() - t0
    out: dict[str, Any] = {}
    for label, ref in (("keel (stored profile)", stored), ("keel (DataFrames)", reference)):
        seconds, _, result = _timed(lambda ref=ref: drift(ref, current), repeat)
        out[label] = {
            "seconds": seconds,
            "drifted": result.drifted,
            "columns": {
                c.column: {"test": c.test, "statistic": c.statistic, "threshold": c.threshold, "drifted": c.drifted}
                for c in result.columns
            },
        }
    out["keel (stored profile)"]["reference_profile_s"] = profile_s
    return out


def evidently_python() -> str | None:
    candidate = PEER_VENV / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def install_peers() -> None:
    print(f"creating {PEER_VENV} with evidently and pandas<3 (its own venv: keel's environment has pandas 3)")
    PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "evidently", "pandas<3"], check=True)


def evidently_drift(python: str, reference: Any, current: Any) -> dict[str, Any] | str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(tempfile.mkdtemp(prefix="keel-bench-drift-"))
    try:
        paths = []
        for name, frame in (("reference", reference), ("current", current)):
            path = folder / f"{name}.parquet"
            # no pandas metadata: pandas 3's "str" dtype would not round-trip into pandas 2
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None), path)
            paths.append(str(path))
        done = subprocess.run(
            [python, str(Path(__file__).parent / "peers" / "evidently_drift.py"), *paths],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0:
        return done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------------------- main


def _ratio(slow: float, fast: float) -> str:
    ratio = slow / fast
    return f"{ratio:,.1f}x faster" if ratio >= 1 else f"{1 / ratio:,.1f}x slower"


SHORT_METHODS = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon"}


def print_validation(console: Any, val: dict[str, Any], rows: int, repeat: int) -> None:
    from rich.table import Table

    k, p = val["keel"], val.get("pandera")
    table = Table(title=f"(1) profile + validate, {rows:,} rows x 20 columns ({k['frame_mb']:,.0f} MB frame)")
    table.add_column("workload")
    table.add_column("keel", justify="right")
    if p:
        table.add_column(f"pandera {p['version']}", justify="right")
        table.add_column("keel vs pandera", justify="right", style="bold green")
    both = k["profile_s"] + k["validate_s"]

    def vs(peer_key: str, keel_value: float) -> list[str]:
        return [f"{p[peer_key]:.3f}", _ratio(p[peer_key], keel_value)] if p else []

    dash = ["—", "—"] if p else []
    table.add_row("profile (to_arrow + compute_profile), s", f"{k['profile_s']:.3f}", *dash)
    same = f"validate, the same {k['checks_equivalent']} checks, s"
    table.add_row(same, f"{k['validate_s']:.3f}", *vs("validate_s", k["validate_s"]))
    table.add_row("  first (cold) run, s", f"{k['validate_first_s']:.3f}", *vs("validate_first_s", k["validate_first_s"]))
    table.add_row("keel profile + validate vs pandera validate, s", f"{both:.3f}", *vs("validate_s", both))
    table.add_row(f"validate, full suite ({k['checks_full']} checks, + IQR outliers), s", f"{k['validate_full_s']:.3f}", *dash)
    above = "peak RSS (absolute: VmHWM not resettable here)" if k["peak_is_absolute"] else "peak memory above the frame"
    table.add_row(f"{above}: profile, MB", f"{k['profile_peak_mb']:,.0f}", *dash)
    mem = []
    if p:
        mem = [f"{p['validate_peak_mb']:,.0f}", f"{p['validate_peak_mb'] / max(k['validate_peak_mb'], 1e-9):,.1f}x less"]
    table.add_row(f"{above}: validate, MB", f"{k['validate_peak_mb']:,.0f}", *mem)
    console.print(table)
    verdict = "passed" if k["passed"] else f"FAILED: {k['errors'][:3]}"
    console.print(
        f"keel: equivalent checks {verdict}; full suite passed={k['full_passed']} ({k['full_warnings']} outlier warnings). "
        + ("pandera: passed (lazy=True). " if p else "")
        + f"Timings are medians of {repeat}; peak memory is RSS above the loaded frame, each tool in its own process."
    )


def print_drift(console: Any, drift_results: dict[str, Any], columns: list[str], rows: int, repeat: int) -> None:
    from rich.table import Table

    injected = list(DRIFTS)
    stable = [c for c in columns if c not in DRIFTS]
    ev = drift_results.get("Evidently")
    table = Table(title=f"(2) drift, {rows:,} rows x 25 columns (20 numeric, 5 categorical, 5 drifted)")
    table.add_column("tool")
    table.add_column("seconds", justify="right")
    if ev:
        table.add_column("Evidently / keel", justify="right", style="bold green")
    table.add_column("injected found", justify="right")
    table.add_column("stable flagged", justify="right")
    for tool, r in drift_results.items():
        flagged = set(r["drifted"])
        r["injected_found"] = [c for c in injected if c in flagged]
        r["stable_flagged"] = [c for c in stable if c in flagged]
        missed = [c for c in injected if c not in flagged]
        cells = [tool, f"{r['seconds']:.3f}"]
        if ev:
            cells.append("—" if tool == "Evidently" else _ratio(ev["seconds"], r["seconds"]))
        cells.append(f"{len(r['injected_found'])}/{len(injected)}" + (f" (missed {', '.join(missed)})" if missed else ""))
        false = r["stable_flagged"]
        cells.append(f"{len(false)}/{len(stable)}" + (f" ({', '.join(false)})" if false else ""))
        table.add_row(*cells)
    console.print(table)

    detail = Table(title="(2) per column: statistic (threshold), the injected and any flagged stable column")
    detail.add_column("column")
    detail.add_column("injected drift")
    detail.add_column("keel", justify="right")
    if ev:
        detail.add_column("Evidently", justify="right")
    keel_cols = drift_results["keel (DataFrames)"]["columns"]
    shown = injected + [c for c in stable if any(c in r["drifted"] for r in drift_results.values())]

    def cell(test: str, statistic: float, threshold: float, flagged: bool, column: str) -> str:
        text = f"{SHORT_METHODS.get(test, test)} {statistic:.4f} ({threshold:g})"
        if flagged != (column in DRIFTS):
            text += " [red]missed[/]" if column in DRIFTS else " [red]false alarm[/]"
        return text

    for c in shown:
        kc = keel_cols[c]
        cells = [c, DRIFTS.get(c, "none (stable)"), cell(kc["test"], kc["statistic"], kc["threshold"], kc["drifted"], c)]
        if ev:
            ec = ev["columns"].get(c)
            cells.append(cell(ec["method"], ec["score"], ec["threshold"], ec["drifted"], c) if ec else "—")
        detail.add_row(*cells)
    console.print(detail)
    stored = drift_results["keel (stored profile)"]
    note = (
        f"keel: the stored reference profile took {stored['reference_profile_s']:.3f} s once (not in the drift time); "
        f"keel times are medians of {repeat} after a warm-up."
    )
    if ev:
        note += f" Evidently {ev['version']} (pandas {ev['pandas']}): one timed run after a warm-up on 2,000 rows"
        note += "." if ev["preset_count"] == len(ev["drifted"]) else f"; its preset counted {ev['preset_count']} drifted."
    console.print(note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the validation workload")
    parser.add_argument("--drift-rows", type=int, default=100_000, help="rows of each drift frame")
    parser.add_argument("--repeat", type=int, default=3, help="timings are the median of this many runs")
    parser.add_argument("--install-peers", action="store_true", help="create Evidently's venv first")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--child", choices=("keel", "pandera"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["DO_NOT_TRACK"] = "true"
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.repeat)))
        return

    from rich.console import Console

    console = Console()
    if args.install_peers and not (PEER_VENV / "bin" / "python").exists():
        install_peers()
    results: dict[str, Any] = {"validation": {}, "drift": {}}

    console.print(f"[bold](1) profile + validate[/] {args.rows:,} rows x 20 columns, each tool in its own process")
    tools = ["keel"]
    if not args.no_peer:
        try:
            import pandera  # noqa: F401

            tools.append("pandera")
        except ImportError:
            console.print("[yellow]pandera not installed (pip install -e '.[bench]'): keel only[/]")
    for tool in tools:
        found = run_child(tool, args.rows, args.repeat)
        if isinstance(found, str):
            console.print(f"[red]{tool} run failed[/]: {found}")
        else:
            results["validation"][tool] = found
    if "keel" in results["validation"]:
        print_validation(console, results["validation"], args.rows, args.repeat)

    console.print(f"[bold](2) drift[/] {args.drift_rows:,} rows x 25 columns, drift injected into {', '.join(DRIFTS)}")
    reference, current = drift_frames(args.drift_rows)
    results["drift"] = keel_drift(reference, current, args.repeat)
    python = None if args.no_peer else evidently_python()
    if python:
        console.print(f"[bold]Evidently[/] DataDriftPreset via {python}")
        found = evidently_drift(python, reference, current)
        if isinstance(found, str):
            console.print(f"[red]Evidently run failed[/]: {found}")
        else:
            results["drift"]["Evidently"] = found
    elif not args.no_peer:
        console.print("[yellow]Evidently not found: run with --install-peers to compare[/]")
    print_drift(console, results["drift"], list(reference.columns), args.drift_rows, args.repeat)
    console.print("targets: (2) >= 20x faster than Evidently, all 5 injected drifts found, none of the 20 stable ones flagged")
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    main()
