"""The registry benchmark's workload done with MLflow: log + register a scikit-learn pipeline, load it as pyfunc,
predict one row at a time.

Runs inside MLflow's own virtual environment (its pins clash with keel's), in the working folder
the caller gives it, with ``MLFLOW_TRACKING_URI`` set by the caller (SQLite). Prints one JSON
object with the figures. Called by ``bench/registry.py``:

    python mlflow_registry.py REGISTRATIONS LOADS ROWS WARMUP SEED
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def per_call_us(fn: object, calls: int, warmup: int) -> float:
    """Median of ``calls`` timed calls (perf_counter_ns) after ``warmup`` untimed ones, in µs."""
    for _ in range(warmup):
        fn()  # type: ignore[operator]
    timings = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()  # type: ignore[operator]
        timings.append(time.perf_counter_ns() - t0)
    return statistics.median(timings) / 1000


def main() -> None:
    registrations, loads, rows, warmup, seed = (int(x) for x in sys.argv[1:6])
    import logging

    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    mlflow.set_experiment("bench-registry")

    def log_and_register(name: str, **kwargs: object) -> None:
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name, input_example=X_train.head(5),
                pyfunc_predict_fn="predict_proba",  # the same output as keel's predict_proba
                **kwargs,
            )  # fmt: skip

    log_and_register("warmup")  # not timed: imports, the SQLite schema and its migrations
    timings = []
    for i in range(registrations):
        t0 = time.perf_counter()
        log_and_register(f"breast-cancer-{i}")
        timings.append(time.perf_counter() - t0)
    out: dict[str, object] = {
        "version": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "register_ms": statistics.median(timings) * 1000,
        "registrations": registrations,
    }
    # most of the above is MLflow inferring pip requirements in a subprocess; given them, it skips that
    reqs = [f"scikit-learn=={sklearn.__version__}"]
    timings = []
    for i in range(registrations):
        t0 = time.perf_counter()
        log_and_register(f"breast-cancer-reqs-{i}", pip_requirements=reqs)
        timings.append(time.perf_counter() - t0)
    out["register_given_reqs_ms"] = statistics.median(timings) * 1000

    uri = "models:/breast-cancer-0/1"
    mlflow.pyfunc.load_model(uri)  # warm-up
    timings = []
    for _ in range(loads):
        t0 = time.perf_counter()
        pyfunc_model = mlflow.pyfunc.load_model(uri)
        timings.append(time.perf_counter() - t0)
    out["load_ms"] = statistics.median(timings) * 1000
    out["loads"] = loads

    row = X_test.iloc[[0]]
    expected = model.predict_proba(row)
    got = pyfunc_model.predict(row)
    assert abs(float(got[0][1]) - float(expected[0][1])) < 1e-9, (got, expected)
    out["pyfunc_us"] = per_call_us(lambda: pyfunc_model.predict(row), rows, warmup)
    raw = pyfunc_model.get_raw_model()
    out["sklearn_us"] = per_call_us(lambda: raw.predict_proba(row), rows, warmup)  # control: same versions as keel's?
    out["rows"] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
