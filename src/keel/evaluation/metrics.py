"""Standard metrics on scikit-learn, and the precision/recall trade-off against the threshold.

>>> m = classification_metrics(y_true, y_score=proba[:, 1])          # doctest: +SKIP
>>> m["f1"], m["roc_auc"], m["confusion_matrix"]                      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument, MissingExtra
from keel.core.html import esc, figure, fmt, page, xy_chart


def _sk() -> Any:
    try:
        import sklearn.metrics as skm
    except ImportError:
        raise MissingExtra("scikit-learn", "quickstart") from None
    return skm


def _arrays(y_true: Any, other: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true), np.asarray(other)
    if a.ndim != 1 or len(a) == 0:
        raise InvalidArgument.for_field("y_true", f"shape {a.shape}", "a non-empty 1-D array")
    if len(b) != len(a):
        raise InvalidArgument(f"{what} has {len(b)} rows but y_true has {len(a)}; expected the same number")
    return a, b


def classification_metrics(y_true: Any, y_pred: Any = None, y_score: Any = None, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC and log loss (with scores), and the confusion matrix.

    Binary problems: ``y_score`` is the probability of the positive class, and ``y_pred``
    defaults to ``y_score >= threshold``. Multiclass: ``y_score`` is the (n, k) probability
    matrix and precision/recall/F1 are macro averages.
    """
    skm = _sk()
    if y_pred is None and y_score is None:
        raise InvalidArgument("classification_metrics needs y_pred or y_score")
    score = None if y_score is None else np.asarray(y_score, dtype=float)
    if y_pred is None:
        assert score is not None
        y_true_arr, score = _arrays(y_true, score, "y_score")
        y_pred = (score >= threshold).astype(int) if score.ndim == 1 else score.argmax(axis=1)
    y_true_arr, pred = _arrays(y_true, y_pred, "y_pred")
    labels = np.unique(np.concatenate([y_true_arr, pred]))
    binary = len(labels) <= 2 and (score is None or score.ndim == 1)
    average = "binary" if binary and set(labels.tolist()) <= {0, 1} else "macro"
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y_true_arr, pred)),
        "precision": float(skm.precision_score(y_true_arr, pred, average=average, zero_division=0)),
        "recall": float(skm.recall_score(y_true_arr, pred, average=average, zero_division=0)),
        "f1": float(skm.f1_score(y_true_arr, pred, average=average, zero_division=0)),
        "confusion_matrix": skm.confusion_matrix(y_true_arr, pred, labels=labels).tolist(),
        "labels": labels.tolist(),
        "support": len(y_true_arr),
    }
    if score is not None and len(np.unique(y_true_arr)) > 1:
        if score.ndim == 1:
            out["roc_auc"] = float(skm.roc_auc_score(y_true_arr, score))
            out["log_loss"] = float(skm.log_loss(y_true_arr, np.clip(score, 1e-15, 1 - 1e-15), labels=[0, 1]))
        else:
            out["roc_auc"] = float(skm.roc_auc_score(y_true_arr, score, multi_class="ovr"))
            out["log_loss"] = float(skm.log_loss(y_true_arr, score))
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE and R² of predictions against true values: ``{"mae": ..., "rmse": ..., "r2": ...}``."""
    skm = _sk()
    a, b = _arrays(y_true, y_pred, "y_pred")
    return {
        "mae": float(skm.mean_absolute_error(a, b)),
        "rmse": float(np.sqrt(skm.mean_squared_error(a, b))),
        "r2": float(skm.r2_score(a, b)),
    }


def threshold_curve(y_true: Any, y_score: Any, points: int = 101) -> dict[str, list[float]]:
    """Precision, recall and F1 at each decision threshold: the trade-off a threshold picks."""
    a, s = _arrays(y_true, y_score, "y_score")
    s = s.astype(float)
    thresholds = np.linspace(0.0, 1.0, points)
    positives = a == 1
    pred = s[None, :] >= thresholds[:, None]  # (points, n), vectorised over thresholds
    tp = (pred & positives).sum(axis=1)
    fp = (pred & ~positives).sum(axis=1)
    fn = (~pred & positives).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"threshold": thresholds.tolist(), "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()}


def evaluation_html(metrics: dict[str, Any], curve: dict[str, list[float]] | None = None, title: str = "evaluation") -> str:
    """A self-contained HTML page of an evaluation: the numeric metrics as a table, the confusion matrix when
    ``metrics`` has one, and, given a ``threshold_curve``, precision, recall and F1 by threshold."""
    rows = "".join(
        f"<tr><td class=l>{esc(k)}</td><td>{fmt(v)}</td></tr>" for k, v in metrics.items() if isinstance(v, (int, float))
    )
    out = [f"<h2>Metrics</h2><table>{rows}</table>"]
    if "confusion_matrix" in metrics:
        labels = metrics.get("labels", list(range(len(metrics["confusion_matrix"]))))
        head = "".join(f"<th>predicted {esc(label)}</th>" for label in labels)
        body = "".join(
            f"<tr><th class=l>actual {esc(label)}</th>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
            for label, row in zip(labels, metrics["confusion_matrix"], strict=True)
        )
        out.append(f"<h2>Confusion matrix</h2><table><tr><th></th>{head}</tr>{body}</table>")
    if curve:
        best = int(np.argmax(curve["f1"]))
        chart = xy_chart([(name, curve["threshold"], curve[name], "line") for name in ("precision", "recall", "f1")])
        out.append("<h2>Trade-off</h2><div class=charts>" + figure("precision, recall and F1 by threshold", chart,
                   ["precision", "recall", "f1"]) + "</div>")  # fmt: skip
        out.append(
            f"<p class=muted>best F1 {fmt(curve['f1'][best])} at threshold {fmt(curve['threshold'][best])} "
            f"(precision {fmt(curve['precision'][best])}, recall {fmt(curve['recall'][best])}); raise the threshold "
            "for precision, lower it for recall</p>"
        )
    return page(title, "".join(out))


def _evaluation_run(run: Any) -> Any:
    """The run to log on: ``run`` itself, or the active run for ``None``; refused before anything is computed."""
    from keel.context import current_run

    if run is None:
        run = current_run()
        if run is None:
            raise InvalidArgument.for_field("run", None, "a run (keel.start_run() as run), or None inside an active run")
    if not (hasattr(run, "log_metrics") and hasattr(run, "log_text")):
        raise InvalidArgument.for_field("run", run, "a run (keel.start_run() as run), or None inside an active run")
    return run


def log_evaluation(
    run: Any, y_true: Any, *, y_score: Any = None, y_pred: Any = None, task: str = "classification", prefix: str = ""
) -> dict[str, Any]:
    """Compute the metrics, log the numeric ones on ``run`` (an ActiveRun; ``None``: the active run), attach
    ``evaluation.html``."""
    run = _evaluation_run(run)
    if task == "classification":
        metrics = classification_metrics(y_true, y_pred, y_score)
        score = None if y_score is None else np.asarray(y_score)
        curve = threshold_curve(y_true, score) if score is not None and score.ndim == 1 else None
    elif task == "regression":
        metrics, curve = regression_metrics(y_true, y_pred), None
    else:
        raise InvalidArgument.for_field("task", task, "'classification' or 'regression'")
    run.log_metrics({f"{prefix}{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "support"})
    run.log_text(evaluation_html(metrics, curve, f"evaluation {prefix.rstrip('_')}".strip()), f"{prefix}evaluation.html")
    return metrics
