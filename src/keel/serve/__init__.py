"""Layer 3: the inference server: a deployment (or one registered model) behind the Open Inference Protocol (V2)
and ``/predict``, its prediction log and the live comparison of its models.

>>> app = keel.serve.create_app("churn")        # a deployment, followed as it changes  # doctest: +SKIP
>>> uvicorn.run(app)                             # doctest: +SKIP

``keel serve DEPLOYMENT|MODEL_URI`` runs it. Names load lazily: ``keel server`` imports ``keel.serve.openapi_docs``
without pulling numpy and the model code in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.serve.app import create_app
    from keel.serve.background import serving
    from keel.serve.comparison import Comparison, compare, compare_frame
    from keel.serve.inputs import Violation
    from keel.serve.metrics import ServeMetrics
    from keel.serve.models import ServedModel, load_served
    from keel.serve.predictions import log_labels, read_predictions
    from keel.serve.predlog import PredictionLog

_WHERE = {
    "create_app": "app",
    "serving": "background",
    "Comparison": "comparison",
    "compare": "comparison",
    "compare_frame": "comparison",
    "Violation": "inputs",
    "ServeMetrics": "metrics",
    "ServedModel": "models",
    "load_served": "models",
    "log_labels": "predictions",
    "read_predictions": "predictions",
    "PredictionLog": "predlog",
}
__all__ = [
    "Comparison",
    "PredictionLog",
    "ServeMetrics",
    "ServedModel",
    "Violation",
    "compare",
    "compare_frame",
    "create_app",
    "load_served",
    "log_labels",
    "read_predictions",
    "serving",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"keel.serve.{module}"), name)
