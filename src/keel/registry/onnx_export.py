"""ONNX export with a parity check: the exported model must agree with the original on held-out rows.

scikit-learn estimators and pipelines go through skl2onnx; XGBoost and LightGBM through
onnxmltools. The export runs both models on the rows, records the label agreement and the
largest probability difference, and refuses an export that does not agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument, MissingExtra
from keel.core.errors import ParityFailed as ParityFailed  # defined in the one error tree

MIN_AGREEMENT = 0.999
MAX_PROBA_DIFF = 1e-3


@dataclass(frozen=True)
class Parity:
    rows: int
    label_agreement: float
    max_proba_diff: float | None

    @property
    def ok(self) -> bool:
        return self.label_agreement >= MIN_AGREEMENT and (self.max_proba_diff is None or self.max_proba_diff <= MAX_PROBA_DIFF)


def to_onnx(model: Any, n_features: int) -> bytes:
    """ONNX bytes for a scikit-learn, XGBoost or LightGBM model taking a float32 matrix of ``n_features``."""
    try:
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        raise MissingExtra("skl2onnx", "onnx") from None
    initial = [("input", FloatTensorType([None, n_features]))]
    module = type(model).__module__
    if module.startswith(("xgboost", "lightgbm")):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType as MlFloatTensorType

        ml_initial = [("input", MlFloatTensorType([None, n_features]))]
        if module.startswith("xgboost"):
            import copy

            model = copy.deepcopy(model)
            model.get_booster().feature_names = None  # the converter wants positional names (f0, f1, ...)
            onx = onnxmltools.convert_xgboost(model, initial_types=ml_initial, target_opset=15)
        else:
            onx = onnxmltools.convert_lightgbm(model, initial_types=ml_initial, target_opset=15, zipmap=False)
    else:
        from skl2onnx import convert_sklearn

        try:
            onx = convert_sklearn(model, initial_types=initial, options={"zipmap": False}, target_opset=17)
        except Exception as exc:  # noqa: BLE001 - skl2onnx raises many kinds for unsupported models
            raise InvalidArgument(f"cannot convert {type(model).__name__} to ONNX: {exc}") from None
    return bytes(onx.SerializeToString())


class OnnxModel:
    """An ONNX model behind ``predict``/``predict_proba`` on ONNX Runtime (numpy in, numpy out)."""

    def __init__(self, data: bytes) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtra("onnxruntime", "onnx") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3  # errors only: converters leave harmless shape notes
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _run(self, X: Any) -> list[Any]:
        outputs: list[Any] = self.session.run(None, {self.input: np.asarray(X, dtype=np.float32)})  # onnxruntime is untyped
        return outputs

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self._run(X)[0]).ravel()

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.predict_proba_of(self._run(X))

    @staticmethod
    def predict_proba_of(results: list[Any]) -> np.ndarray:
        """The probabilities among the outputs of one session run (labels come first)."""
        if len(results) < 2:
            raise InvalidArgument("this ONNX model has no probability output")
        proba = results[1]
        if isinstance(proba, list):  # zipmap output: list of {label: p}
            proba = np.array([[row[k] for k in sorted(row)] for row in proba])
        return np.asarray(proba)


def parity(original: Any, exported: OnnxModel, X: np.ndarray, columns: list[str] | None = None) -> Parity:
    """Both models on the same rows (the original gets them as it was trained: a frame when it had columns)."""
    native: Any = X
    if columns is not None:
        import pandas as pd

        native = pd.DataFrame(X, columns=columns)
    labels_a = np.asarray(original.predict(native)).ravel()
    labels_b = exported.predict(X.astype(np.float32))
    agreement = float(np.mean(labels_a.astype(str) == labels_b.astype(str)))
    diff = None
    if hasattr(original, "predict_proba"):
        try:
            expected = np.asarray(original.predict_proba(native))
            diff = float(np.max(np.abs(expected - exported.predict_proba(X.astype(np.float32)))))
        except InvalidArgument:
            diff = None
    return Parity(len(X), agreement, diff)
