"""keel: a self-hosted MLOps platform.

>>> import keel
>>> with keel.start_run(experiment="demo") as run:      # doctest: +SKIP
...     run.log_param("lr", 0.1)
...     run.log_metric("loss", 0.42, step=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.context import Context
from keel.core.entities import ArtifactRef, Experiment, Metric, Run, RunPage, RunStatus, ViewType
from keel.core.errors import Conflict, IntegrityError, InvalidArgument, KeelError, NotFound
from keel.tracking.client import Client
from keel.tracking.fluent import (
    active_run,
    delete_experiment,
    delete_run,
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
    restore_experiment,
    restore_run,
    search_runs,
    set_client,
    set_description,
    set_experiment,
    set_store,
    set_tag,
    set_tags,
    start_run,
)
from keel.tracking.run import ActiveRun

if TYPE_CHECKING:  # the lazy names below, for type checkers (``keel.data.log`` and ``keel.step`` are typed)
    from keel import data as data
    from keel import evaluation as evaluation
    from keel import pipelines as pipelines
    from keel import registry as registry
    from keel import tune as tune
    from keel.autologging import autolog as autolog
    from keel.pipelines.steps import pipeline as pipeline
    from keel.pipelines.steps import step as step

__version__ = "0.1.0"

# Capabilities with heavy dependencies load on first use: ``keel.data.log(...)`` works after
# ``import keel`` without importing pyarrow, Optuna or scikit-learn up front.
_LAZY_SUBPACKAGES = ("data", "tune", "registry", "evaluation", "pipelines", "label", "fairness", "privacy")


_LAZY_NAMES = {"pipeline": "keel.pipelines.steps", "step": "keel.pipelines.steps"}  # a script that only logs skips them
_LAZY_NAMES["autolog"] = "keel.autologging"  # nothing is patched, and no ML library imported, until it is called


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f"keel.{name}")
    if name in _LAZY_NAMES:
        import importlib

        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
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
    "ViewType",
    "__version__",
    "active_run",
    "autolog",
    "delete_experiment",
    "delete_run",
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
    "restore_experiment",
    "restore_run",
    "search_runs",
    "set_client",
    "set_description",
    "set_experiment",
    "set_store",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]
