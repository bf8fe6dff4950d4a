"""keel: a self-hosted MLOps platform.

>>> import keel
>>> with keel.start_run(experiment="demo") as run:      # doctest: +SKIP
...     run.log_param("lr", 0.1)
...     run.log_metric("loss", 0.42, step=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.context import Context
from keel.core.entities import ArtifactRef, Experiment, Metric, Run, RunPage, RunStatus
from keel.core.errors import Conflict, IntegrityError, InvalidArgument, KeelError, NotFound
from keel.pipelines.steps import pipeline, step
from keel.tracking.client import Client
from keel.tracking.fluent import (
    active_run,
    end_run,
    flush,
    get_client,
    log_artifact,
    log_dict,
    log_figure,
    log_image,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_table,
    log_text,
    search_runs,
    set_client,
    set_experiment,
    set_store,
    set_tag,
    set_tags,
    start_run,
)
from keel.tracking.run import ActiveRun

if TYPE_CHECKING:  # the lazy subpackages below, as modules for type checkers (``keel.data.log`` is typed)
    from keel import data as data
    from keel import evaluation as evaluation
    from keel import pipelines as pipelines
    from keel import registry as registry
    from keel import tune as tune

__version__ = "0.1.0"

# Capabilities with heavy dependencies load on first use: ``keel.data.log(...)`` works after
# ``import keel`` without importing pyarrow, Optuna or scikit-learn up front.
_LAZY_SUBPACKAGES = ("data", "tune", "registry", "evaluation", "pipelines")


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f"keel.{name}")
    raise AttributeError(f"module 'keel' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "ArtifactRef",
    "Client",
    "Conflict",
    "Context",
    "Experiment",
    "IntegrityError",
    "InvalidArgument",
    "KeelError",
    "Metric",
    "NotFound",
    "Run",
    "RunPage",
    "RunStatus",
    "__version__",
    "active_run",
    "end_run",
    "flush",
    "get_client",
    "log_artifact",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "pipeline",
    "search_runs",
    "set_client",
    "set_experiment",
    "set_store",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]
