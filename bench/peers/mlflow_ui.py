"""Fill an MLflow SQLite store for the UI benchmark: N runs with 10 params and 5 metrics each, through MLflow's API.

Runs inside MLflow's own virtual environment (its pins clash with keel's). Usage:
``python mlflow_ui.py DB_PATH ARTIFACT_DIR RUNS``; prints one JSON object (experiment id, seconds, MLflow version).
Each run is one ``create_run`` and one ``log_batch`` (params, metrics, end time through ``set_terminated``): the
fastest way MLflow's client offers to write a run.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def main() -> None:
    db, artifacts, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import logging

    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("bench-ui", artifact_location=artifacts)
    t0 = time.perf_counter()
    for r in range(runs):
        run = client.create_run(exp, run_name=f"run-{r}")
        ts = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k}", ((r * 7919 + k) % 10007) / 10007, ts, 0) for k in range(5)],
            params=[Param(f"p{k}", str((r * (k + 3)) % 97)) for k in range(10)],
        )
        client.set_terminated(run.info.run_id)
    print(json.dumps({"experiment_id": exp, "runs": runs, "seconds": time.perf_counter() - t0, "version": mlflow.__version__}))


if __name__ == "__main__":
    main()
