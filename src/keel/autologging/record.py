"""What a logged fit writes to its run: params, training metrics, metric histories, the model, the dataset.

The model is the run's ``model.pkl`` artifact (cloudpickle), which ``keel models register --run RUN`` reads,
with a few rows of its input beside it (``model.example.parquet``, or ``.npy`` for arrays) from which
registration infers the signature, and that signature as ``model.signature.json`` for reading. The training
data (features and target) becomes a version of the dataset ``<Estimator>.train``, linked as the run's input;
identical data is the version stored before (content-addressed), so refitting on it stores nothing new.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from typing import Any

from keel.core import validation as v
from keel.core.errors import KeelError
from keel.tracking.run import ActiveRun

MODEL = "model.pkl"
EXAMPLE_ROWS = 5
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-./ :]")


def _param_text(key: str, value: Any) -> str:
    try:
        return v.param_to_str(key, value)
    except KeelError:  # longer than a param may be (a huge grid, say): its start is still worth reading
        return str(value)[: v.MAX_PARAM_VALUE_LENGTH - 3] + "..."


def log_params(run: ActiveRun, params: Mapping[str, Any]) -> None:
    """Params with keys keel accepts, values as keel stores them (an estimator as its repr)."""
    values = {}
    for key, value in params.items():
        key = _BAD_KEY_CHARS.sub("_", str(key))[: v.MAX_KEY_LENGTH]
        if key:
            values[key] = _param_text(key, value)
    if values:
        run.log_params(values)


def training_metrics(model: Any, X: Any, y: Any) -> dict[str, float]:
    """keel.evaluation's metrics of ``model`` on its training data, as ``train_<name>``: accuracy, precision,
    recall, f1 (and roc_auc, log_loss with probabilities) for a classifier; mae, rmse, r2 for a regressor."""
    import numpy as np
    from sklearn.base import is_classifier, is_regressor

    from keel.evaluation.metrics import classification_metrics, regression_metrics

    if y is None:
        return {}
    y_true = np.asarray(y)
    if y_true.ndim == 2 and y_true.shape[1] == 1:
        y_true = y_true.ravel()
    if y_true.ndim != 1:
        return {}  # multi-output: no single set of metrics
    if is_classifier(model):
        pred = np.asarray(model.predict(X))
        classes = getattr(model, "classes_", None)
        if classes is not None and hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X))
            classes = np.asarray(classes)
            if len(classes) == 2:  # the score of the positive class, labels as 0/1
                found = classification_metrics((y_true == classes[1]).astype(int), (pred == classes[1]).astype(int), proba[:, 1])
            else:  # labels as indices into classes_ (sorted), the probability matrix as scores
                found = classification_metrics(np.searchsorted(classes, y_true), np.searchsorted(classes, pred), proba)
        else:
            found = classification_metrics(y_true, pred)
    elif is_regressor(model):
        found = regression_metrics(y_true, np.asarray(model.predict(X)))
    else:
        return {}
    return {f"train_{k}": float(x) for k, x in found.items() if isinstance(x, (int, float)) and k != "support"}


def metric_key(*parts: str) -> str:
    return _BAD_KEY_CHARS.sub("_", "-".join(parts))[: v.MAX_KEY_LENGTH]


def log_history(run: ActiveRun, evals: Mapping[str, Mapping[str, Any]]) -> None:
    """Per-iteration evaluation results (``{"validation_0": {"logloss": [...]}}``, as XGBoost and LightGBM
    record them) as metrics ``validation_0-logloss`` with steps 0, 1, ..."""
    for data_name, metrics in evals.items():
        for metric_name, values in metrics.items():
            key = metric_key(str(data_name), str(metric_name))
            for step, value in enumerate(values):
                # xgboost.cv-style (mean, std) pairs: the mean
                run.log_metric(key, float(value[0] if isinstance(value, tuple) else value), step=step)


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas") and type(data).__name__ == "DataFrame"


def _example(X: Any) -> Any:
    """The first rows of ``X`` as pandas or numpy (what signatures and registration take), or None."""
    import numpy as np

    if _is_pandas(X):
        return X.head(EXAMPLE_ROWS)
    module = type(X).__module__
    if module.startswith(("polars", "pyarrow")):
        return X.slice(0, EXAMPLE_ROWS).to_pandas()
    if isinstance(X, (np.ndarray, list, tuple)):
        array = np.asarray(X)
        return array[:EXAMPLE_ROWS] if array.ndim >= 1 and array.dtype != object else None
    return None  # sparse matrices, DMatrix, ...: no example, no signature


def log_model(run: ActiveRun, model: Any, X: Any) -> None:
    """``model.pkl``, and where ``X`` allows, ``model.example.*`` and ``model.signature.json``."""
    import cloudpickle

    from keel.registry.signature import infer_signature

    client = run.client
    client.log_bytes(run.id, cloudpickle.dumps(model), MODEL, "application/x-python-pickle")
    example = _example(X) if X is not None else None
    if example is None:
        return
    output = model.predict(example)
    if _is_pandas(example):
        client.log_table(run.id, example, "model.example.parquet")
    else:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, example, allow_pickle=False)
        client.log_bytes(run.id, buffer.getvalue(), "model.example.npy", "application/octet-stream")
    signature = {**infer_signature(example, output), "class": f"{type(model).__module__}.{type(model).__qualname__}"}
    client.log_dict(run.id, signature, "model.signature.json")


def logged_example(client: Any, run_id: str, artifact: str) -> Any:
    """The input example logged beside the model artifact ``artifact`` of a run (``model.pkl`` ->
    ``model.example.parquet`` or ``.npy``), or None: what ``keel models register --run`` infers the signature from."""
    stem = artifact.rsplit(".", 1)[0]
    names = {ref.path for ref in client.list_artifacts(run_id)}
    if f"{stem}.example.parquet" in names:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(client.read_artifact(run_id, f"{stem}.example.parquet")))
    if f"{stem}.example.npy" in names:
        import numpy as np

        return np.load(io.BytesIO(client.read_artifact(run_id, f"{stem}.example.npy")), allow_pickle=False)
    return None


def default_model_artifact(client: Any, run_id: str) -> str:
    """``model.pkl`` when the run has one (keel.autolog wrote it), else ``output.pkl`` (a pipeline step's output)."""
    return MODEL if any(ref.path == MODEL for ref in client.list_artifacts(run_id)) else "output.pkl"


def training_frame(X: Any, y: Any) -> Any:
    """Features and target as one pandas frame (numpy columns named ``f0``, ``f1``, ...; the target named after
    the Series, else ``target``), or None for data that is not a table (sparse, DMatrix, text)."""
    import numpy as np
    import pandas as pd

    if _is_pandas(X):
        frame = X.copy(deep=False)
    elif type(X).__module__.startswith(("polars", "pyarrow")):
        frame = X.to_pandas()
    elif isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype != object:
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    else:
        return None
    frame.columns = [str(c) for c in frame.columns]
    if y is not None:
        target = np.asarray(y)
        if target.ndim == 2 and target.shape[1] == 1:
            target = target.ravel()
        if target.ndim != 1 or len(target) != len(frame):
            return frame
        name = getattr(y, "name", None)
        name = name if isinstance(name, str) and name and name not in frame.columns else "target"
        while name in frame.columns:
            name += "_"
        frame[name] = target
    return frame


def log_dataset(run: ActiveRun, X: Any, y: Any, name: str) -> None:
    """The training data as a version of ``name`` (the version stored before, when identical), the run's input."""
    from keel.data.dataset_versions import log

    frame = training_frame(X, y)
    if frame is None:
        return
    ctx = run.client.context
    version = log(frame, _BAD_KEY_CHARS.sub("_", name)[:128], source="keel.autolog", run=False, ctx=ctx)
    ctx.store.datasets.link_run(run.id, version.id, "input")


def log_fit(
    run: ActiveRun,
    model: Any,
    *,
    framework: str,
    X: Any,
    y: Any,
    params: Mapping[str, Any],
    log_models: bool,
    log_datasets: bool,
) -> None:
    """Everything about one fit: tags, params, then training metrics, the model and the dataset, each on its
    own (a model that cannot be pickled still leaves the metrics and the dataset logged)."""
    run.set_tags({"keel.autolog": framework, "keel.estimator": f"{type(model).__module__}.{type(model).__qualname__}"})
    log_params(run, params)
    each([
        (True, lambda: run.log_metrics(training_metrics(model, X, y))),
        (log_models and callable(getattr(model, "predict", None)), lambda: log_model(run, model, X)),
        (log_datasets, lambda: log_dataset(run, X, y, f"{type(model).__name__}.train")),
    ])  # fmt: skip


def each(parts: list[tuple[bool, Callable[[], None]]]) -> None:
    """Run the wanted parts, each on its own: the first failure is raised after the others ran."""
    failed: Exception | None = None
    for wanted, part in parts:
        if wanted:
            try:
                part()
            except Exception as exc:  # noqa: BLE001 - the next part still gets logged
                failed = failed or exc
    if failed is not None:
        raise failed
