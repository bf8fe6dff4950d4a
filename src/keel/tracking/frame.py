"""Runs as a pandas DataFrame, the shape ``mlflow.search_runs`` gives: one row per run, then ``params.*``,
``metrics.*`` (latest values) and ``tags.*`` columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from keel.core.entities import Run
from keel.core.errors import MissingExtra

FIXED_COLUMNS = ("run_id", "experiment", "name", "status", "start_time", "end_time")


def runs_frame(runs: Sequence[Run], experiment_name: Callable[[int], str]) -> Any:
    """``runs`` in their order; times as UTC timestamps, a param or tag a run lacks as None, a metric as NaN."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingExtra("pandas", "data") from None
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    tag_keys = sorted({k for r in runs for k in r.tags})
    columns: dict[str, Any] = {
        "run_id": [r.id for r in runs],
        "experiment": [experiment_name(r.experiment_id) for r in runs],
        "name": [r.name for r in runs],
        "status": [r.status.value for r in runs],
        "start_time": pd.to_datetime([r.start_time for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r.end_time for r in runs], unit="ms", utc=True),
    }
    for key in param_keys:
        columns[f"params.{key}"] = pd.Series([r.params.get(key) for r in runs], dtype=object)
    for key in metric_keys:
        columns[f"metrics.{key}"] = pd.Series(
            [m if (m := r.metric(key)) is not None else float("nan") for r in runs], dtype=float
        )
    for key in tag_keys:
        columns[f"tags.{key}"] = pd.Series([r.tags.get(key) for r in runs], dtype=object)
    return pd.DataFrame(columns)
