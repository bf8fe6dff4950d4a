"""Tracking benchmark: keel against MLflow (SQLite backends, same machine, same invocation).

    python bench/tracking.py                  # keel, and MLflow if it can be found
    python bench/tracking.py --install-peers  # first create MLflow's own venv in .bench-venv/mlflow

Workloads (issue #2):
  (a) 100,000 log_metric calls one by one, values/s including the final flush
  (b) 1,000 runs each with 10 params and 5 metrics, ms per run
  (c) search with a metric filter over 10,000 runs, ms (median of 10)
  (d) start-up (issue #13): a script that imports the library and logs one metric, in a fresh
      folder (a new store: the defaults of each), wall seconds per process, median of --startup-repeats;
      keel and MLflow alternate so both see the same machine load

MLflow runs in its own virtual environment because its pins (pyarrow<26) clash with keel's.
Its one-by-one metric logging is slow enough (~400 values/s) that it logs fewer values by
default (--mlflow-metric-calls); rates are comparable, totals are not.
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
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench-venv" / "mlflow"
console = Console()


def keel_workloads(metric_calls: int, runs: int, search_runs: int, store: str | None = None) -> dict[str, float]:
    from keel.core.clock import now_ms
    from keel.tracking.client import Client

    folder = Path(tempfile.mkdtemp(prefix="keel-bench-"))
    client = Client(store or f"sqlite:///{folder / 'keel.db'}", str(folder / "artifacts"))
    out: dict[str, float] = {}

    run = client.create_run("bench")
    t0 = time.perf_counter()
    for i in range(metric_calls):
        client.log_metric(run.id, "loss", float(i), step=i)
    client.flush()
    out["metric_values_per_s"] = metric_calls / (time.perf_counter() - t0)
    client.end_run(run.id)
    assert len(client.get_metric_history(run.id, "loss")) == metric_calls

    t0 = time.perf_counter()
    for r in range(runs):
        run = client.create_run("bench-runs")
        client.log_params(run.id, {f"p{k}": r * k for k in range(10)})
        for k in range(5):
            client.log_metric(run.id, f"m{k}", r / (k + 1))
        client.end_run(run.id)
    out["ms_per_run"] = (time.perf_counter() - t0) * 1000 / runs

    store_ = client.store
    exp = store_.get_or_create_experiment("bench-search")
    t0 = time.perf_counter()
    ts = now_ms()
    for r in range(search_runs):
        rid = store_.create_run(exp.id, params={"model": "rf" if r % 2 else "lr"}).id
        store_.log_metrics([(rid, "acc", (r % 1000) / 1000, 0, ts)])
    out["search_setup_s"] = time.perf_counter() - t0
    timings = []
    for _ in range(10):
        t0 = time.perf_counter()
        page = store_.search_runs([exp.id], filter="metrics.acc > 0.5", max_results=100)
        timings.append(time.perf_counter() - t0)
        assert len(page.runs) == 100
    out["search_ms"] = statistics.median(timings) * 1000
    client.close()
    shutil.rmtree(folder, ignore_errors=True)
    return out


def keel_over_rest(metric_calls: int, runs: int, search_runs: int, *, auth: bool = False) -> dict[str, float]:
    """The workloads through a local ``keel server``; with ``auth``, the server has a user and every request carries
    its token (authenticated and authorized per request)."""
    from keel.store.metadata import open_store
    from keel.testing.services import keel_server

    folder = Path(tempfile.mkdtemp(prefix="keel-bench-rest-"))
    db = f"sqlite:///{folder / 'server.db'}"
    token = None
    if auth:
        store = open_store(db)
        store.identity.create_principal("bench")
        store.identity.grant("bench", "editor")
        token = store.identity.create_token("bench", name="bench").secret
        store.close()
    with keel_server(db, str(folder / "artifacts")) as url:
        previous = os.environ.get("KEEL_TOKEN")
        if token:
            os.environ["KEEL_TOKEN"] = token
        try:
            return keel_workloads(metric_calls, runs, search_runs, store=url)
        finally:
            if previous is None:
                os.environ.pop("KEEL_TOKEN", None)
            else:
                os.environ["KEEL_TOKEN"] = previous


KEEL_STARTUP = "import keel\nwith keel.start_run(experiment='startup'):\n    keel.log_metric('m', 1.0)\n"
MLFLOW_STARTUP = "import mlflow\nwith mlflow.start_run():\n    mlflow.log_metric('m', 1.0)\n"


def startup_seconds(pythons: dict[str, tuple[str, str]], repeats: int) -> dict[str, list[float]]:
    """Wall time of ``python -c SCRIPT`` in a new empty folder, per library, alternating between them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "MLFLOW_"))}
    times: dict[str, list[float]] = {name: [] for name in pythons}
    for _ in range(repeats):
        for name, (python, script) in pythons.items():
            folder = Path(tempfile.mkdtemp(prefix="startup-"))
            try:
                t0 = time.perf_counter()
                subprocess.run([python, "-c", script], cwd=folder, env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t0)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    return times


def print_startup(times: dict[str, list[float]]) -> dict[str, float]:
    medians = {name: statistics.median(values) for name, values in times.items()}
    table = Table(title=f"(d) start-up, wall s, median of {len(times['keel'])}")
    table.add_column("library")
    table.add_column("median s", justify="right")
    table.add_column("min s", justify="right")
    for name, values in times.items():
        table.add_row(name, f"{medians[name]:.3f}", f"{min(values):.3f}")
    console.print(table)
    verdict = "meets" if medians["keel"] <= 0.3 else "misses"
    line = f"keel {medians['keel']:.3f} s ({verdict} the 0.3 s target)"
    if "mlflow" in medians:
        line += f"; keel/MLflow {medians['keel'] / medians['mlflow']:.2f} (MLflow {medians['mlflow']:.2f} s)"
    console.print(line)
    return medians


def mlflow_python() -> str | None:
    try:
        import mlflow  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    candidate = PEER_VENV / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def install_peers() -> None:
    console.print(f"creating {PEER_VENV} with mlflow (its own venv: its pins clash with keel's)")
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", "mlflow"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metric-calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--mlflow-metric-calls", type=int, default=3_000)
    parser.add_argument("--install-peers", action="store_true", help="create MLflow's venv first")
    parser.add_argument("--no-peer", action="store_true", help="keel only")
    parser.add_argument("--no-rest", action="store_true", help="skip keel through a local keel server")
    parser.add_argument("--startup-repeats", type=int, default=9, help="processes per library for (d)")
    parser.add_argument("--only-startup", action="store_true", help="run (d) alone")
    args = parser.parse_args()
    os.environ["DO_NOT_TRACK"] = "true"
    if args.install_peers and not (PEER_VENV / "bin" / "python").exists():
        install_peers()
    peer = None if args.no_peer else mlflow_python()
    pythons = {"keel": (sys.executable, KEEL_STARTUP)}
    if peer:
        pythons["mlflow"] = (peer, MLFLOW_STARTUP)
    startup = print_startup(startup_seconds(pythons, args.startup_repeats))
    if args.only_startup:
        print(json.dumps({"startup_s": startup}))
        return

    console.print(f"[bold]keel[/] (SQLite) — {args.metric_calls:,} metrics, {args.runs:,} runs, {args.search_runs:,} searched")
    results = {"keel": keel_workloads(args.metric_calls, args.runs, args.search_runs)}
    if not args.no_rest:
        console.print("[bold]keel over REST[/] (keel server on 127.0.0.1, SQLite behind it)")
        results["keel (REST)"] = keel_over_rest(args.metric_calls, args.runs, args.search_runs)
        console.print("[bold]keel over REST with tokens[/] (a user, every request authenticated and authorized)")
        results["keel (REST, tokens)"] = keel_over_rest(args.metric_calls, args.runs, args.search_runs, auth=True)
    if peer:
        console.print(f"[bold]MLflow[/] (SQLite) via {peer}")
        done = subprocess.run(
            [peer, str(Path(__file__).parent / "peers" / "mlflow_tracking.py"),
             str(args.mlflow_metric_calls), str(args.runs), str(args.search_runs)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            console.print(f"[red]MLflow run failed[/]: {done.stderr[-2000:]}")
        else:
            results["mlflow"] = json.loads(done.stdout.strip().splitlines()[-1])
    elif not args.no_peer:
        console.print("[yellow]MLflow not found: run with --install-peers to compare[/]")

    table = Table(title="tracking benchmark (2-core machine, SQLite)")
    table.add_column("workload")
    for name in results:
        table.add_column(name, justify="right")
    if "mlflow" in results:
        table.add_column("keel/MLflow", justify="right", style="bold green")
    rows = [
        ("(a) log_metric one by one, values/s", "metric_values_per_s", "{:,.0f}", False),
        ("(b) run with 10 params + 5 metrics, ms/run", "ms_per_run", "{:.3f}", True),
        ("(c) metric-filter search over runs, ms", "search_ms", "{:.2f}", True),
        ("    (setup of the searched runs, s)", "search_setup_s", "{:.1f}", True),
    ]
    for label, key, fmt, lower_is_better in rows:
        cells = [fmt.format(r[key]) for r in results.values()]
        if "mlflow" in results:
            k, m = results["keel"][key], results["mlflow"][key]
            ratio = (m / k) if lower_is_better else (k / m)
            cells.append(f"{ratio:,.1f}x faster" if ratio >= 1 else f"{1 / ratio:,.1f}x slower")
        table.add_row(label, *cells)
    console.print(table)
    if "mlflow" in results:
        peer = results["mlflow"]
        console.print(
            f"MLflow {peer['version']} logged {int(peer['metric_calls']):,} values one by one "
            "(a rate: it would take minutes for 100,000)."
        )
    console.print("targets: (a) >= 500,000 values/s, (b) <= 1 ms per run, (c) <= 20 ms over 10,000 runs, (d) <= 0.3 s")
    print(json.dumps({**results, "startup_s": startup}))


if __name__ == "__main__":
    main()
