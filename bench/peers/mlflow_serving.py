"""The serving benchmark's model, logged with MLflow: the same pipeline (same data, same seed) registered in an MLflow store.

Runs inside MLflow's own virtual environment (its pins clash with keel's), with ``MLFLOW_TRACKING_URI`` set by the
caller (SQLite). Prints one JSON object: the model URI to give ``mlflow models serve``, MLflow's and scikit-learn's
versions, and the fitted model's class-1 probabilities on the held-out rows (the caller checks they are keel's).
Called by ``bench/serving.py``:

    python mlflow_serving.py SEED
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def main() -> None:
    seed = int(sys.argv[1])
    import mlflow
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
    mlflow.set_experiment("bench-serving")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name="breast-cancer", input_example=X_train.head(5),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # skips requirement inference: nothing is installed
        )  # fmt: skip
    version = info.registered_model_version
    print(json.dumps({
        "uri": f"models:/breast-cancer/{version}",
        "version": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "proba": model.predict_proba(X_test)[:, 1].tolist(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
