"""The tracking benchmark's workloads done with MLflow on its SQLite backend.

Runs inside MLflow's own virtual environment (its pins clash with keel's); prints one
JSON object with the figures. Called by ``bench/tracking.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def main() -> None:
    metric_calls, runs, search_runs = (int(x) for x in sys.argv[1:4])
    import logging

    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    folder = tempfile.mkdtemp(prefix="mlflow-bench-")
    uri = f"sqlite:///{folder}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.create_experiment("bench", artifact_location=f"{folder}/artifacts")
    out: dict[str, float] = {"version": mlflow.__version__}  # type: ignore[dict-item]

    # (a) log_metric one by one
    run = client.create_run(exp)
    t0 = time.perf_counter()
    for i in range(metric_calls):
        client.log_metric(run.info.run_id, "loss", float(i), step=i)
    client.set_terminated(run.info.run_id)
    out["metric_values_per_s"] = metric_calls / (time.perf_counter() - t0)
    out["metric_calls"] = metric_calls

    # (b) runs with 10 params and 5 metrics, through the fluent API as users write it
    mlflow.set_experiment(experiment_id=exp)
    t0 = time.perf_counter()
    for r in range(runs):
        with mlflow.start_run():
            mlflow.log_params({f"p{k}": r * k for k in range(10)})
            for k in range(5):
                mlflow.log_metric(f"m{k}", r / (k + 1))
    out["ms_per_run"] = (time.perf_counter() - t0) * 1000 / runs
    out["runs"] = runs

    # (c) search with a metric filter over many runs (setup with log_batch, not timed)
    search_exp = client.create_experiment("search", artifact_location=f"{folder}/artifacts2")
    t0 = time.perf_counter()
    for r in range(search_runs):
        rid = client.create_run(search_exp).info.run_id
        ts = int(time.time() * 1000)
        client.log_batch(
            rid,
            metrics=[Metric("acc", (r % 1000) / 1000, ts, 0)],
            params=[Param("model", "rf" if r % 2 else "lr")],
        )
    out["search_setup_s"] = time.perf_counter() - t0
    timings = []
    for _ in range(10):
        t0 = time.perf_counter()
        found = client.search_runs([search_exp], filter_string="metrics.acc > 0.5", max_results=100)
        timings.append(time.perf_counter() - t0)
        assert len(found) == 100
    timings.sort()
    out["search_ms"] = timings[len(timings) // 2] * 1000
    out["search_runs"] = search_runs
    print(json.dumps(out))


if __name__ == "__main__":
    main()
