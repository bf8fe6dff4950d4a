"""Layer 3: the inference server: one registered model behind the Open Inference Protocol (V2) and ``/predict``.

>>> app = keel.serve.create_app("models:/churn@production")   # doctest: +SKIP
>>> uvicorn.run(app)                                           # doctest: +SKIP

``keel serve MODEL_URI`` runs it. Only the CLI imports this package.
"""

from keel.serve.app import create_app
from keel.serve.background import serving
from keel.serve.inputs import Violation
from keel.serve.models import ServedModel, load_served

__all__ = ["ServedModel", "Violation", "create_app", "load_served", "serving"]
