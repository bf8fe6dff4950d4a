"""The model a server answers with: a registered version, in its ONNX form when a checked export exists."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import InvalidArgument, MissingExtra
from keel.core.models import ModelVersion
from keel.registry import LoadedModel, load, resolve
from keel.registry.onnx_export import MAX_PROBA_DIFF, MIN_AGREEMENT, OnnxModel
from keel.serve.tensors import DATATYPE_OF_KIND

log = logging.getLogger(__name__)


_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


@dataclass(frozen=True)
class ServedModel:
    """``requested``: the version the URI named; ``loaded.version``: the one that answers (its ONNX export, or itself)."""

    requested: ModelVersion
    loaded: LoadedModel

    @property
    def uri(self) -> str:
        """The URI of the version that answers (``models:/NAME/VERSION``)."""
        return self.loaded.version.uri

    @property
    def signature(self) -> dict[str, Any]:
        """The answering version's signature: its ``inputs`` and ``outputs`` specs."""
        return self.loaded.version.signature

    @property
    def input_spec(self) -> dict[str, Any]:
        """The signature's ``inputs`` part (``{}`` when the version has none)."""
        spec: dict[str, Any] = self.signature.get("inputs") or {}
        return spec

    @cached_property
    def input_names(self) -> tuple[str, ...] | None:
        """The signature's column names (one shared tuple per distinct list: the log groups rows by it), if any."""
        columns = self.input_spec.get("columns") if self.input_spec.get("type") == "dataframe" else None
        if not columns:
            return None
        names = tuple(c["name"] for c in columns)
        return _NAMES.setdefault(names, names)

    @property
    def is_onnx(self) -> bool:
        """True when an ONNX Runtime session answers (the version's ONNX export, or an ONNX version)."""
        return isinstance(self.loaded.model, OnnxModel)

    @property
    def has_proba(self) -> bool:
        """Whether the model gives class probabilities (an ONNX graph with a second output; else ``predict_proba``)."""
        model = self.loaded.model
        if isinstance(model, OnnxModel):  # the class always has the method; the graph may have no probabilities
            return len(model.outputs) >= 2
        return hasattr(model, "predict_proba")

    def run(self, data: Any, outputs: Sequence[str]) -> dict[str, Any]:
        """The model on input already checked against its signature (``keel.serve.inputs``): no second check.
        An ONNX model computes labels and probabilities in one session run."""
        model = self.loaded.model
        if isinstance(model, OnnxModel) and set(outputs) <= {"predict", "predict_proba"}:
            found = model.session.run(None, {model.input: np.asarray(data, dtype=np.float32)})
            result = {"predict": np.asarray(found[0]).ravel()}
            if "predict_proba" in outputs:
                result["predict_proba"] = model.predict_proba_of(found)
            return {name: result[name] for name in outputs}
        if isinstance(data, np.ndarray) and self.input_spec.get("type") == "dataframe":
            data = typed_frame(data, self.input_spec)  # a native model gets the frame it was trained on
        if "predict_proba" in outputs and not self.has_proba:
            raise InvalidArgument(f"model {self.uri} ({type(model).__name__}) has no predict_proba")
        return {name: getattr(model, name)(data) for name in outputs}

    def warm(self) -> None:
        """One call on a made-up row before the model takes traffic (ONNX Runtime and scikit-learn allocate on their
        first call); a model that refuses the made-up row is still served: the first real request warms it."""
        row = warm_up_row(self.input_spec)
        if row is None:
            return
        try:
            self.run(row, ["predict"])
        except Exception:
            log.info("warm-up call of %s failed; it warms on its first request", self.uri, exc_info=True)

    def metadata(self) -> dict[str, Any]:
        """V2 model metadata: one input per signature column (or the one tensor), typed as V2 datatypes."""
        version = self.loaded.version
        spec = self.input_spec
        if spec.get("type") == "tensor":
            inputs = [{"name": "input", "datatype": DATATYPE_OF_KIND.get(spec["dtype"], "BYTES"), "shape": spec["shape"]}]
        else:
            inputs = [
                {"name": c["name"], "datatype": DATATYPE_OF_KIND.get(c["kind"], "BYTES"), "shape": [-1]}
                for c in spec.get("columns", [])
            ]
        outputs = []
        if out := self.signature.get("outputs"):
            outputs.append({"name": "predict", "datatype": DATATYPE_OF_KIND.get(out["dtype"], "BYTES"), "shape": out["shape"]})
        return {
            "name": version.name,
            "versions": [str(version.version)],
            "platform": version.flavor,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {"uri": version.uri, "requested": self.requested.uri},
        }


def checked_onnx_export(version: ModelVersion, ctx: Context | None = None) -> ModelVersion | None:
    """The latest ONNX version exported from ``version`` whose recorded parity passes (``export_onnx`` refuses a
    failing one, but the thresholds are checked again on what the registry recorded), if any."""
    if version.flavor == "onnx":
        return version
    found = None
    for candidate in _ctx(ctx).store.models.list_versions(version.name):
        parity = candidate.signature.get("parity") or {}
        if candidate.flavor != "onnx" or candidate.signature.get("exported_from") != version.version:
            continue
        diff = parity.get("onnx_max_proba_diff")
        if parity.get("onnx_label_agreement", 0.0) >= MIN_AGREEMENT and (diff is None or diff <= MAX_PROBA_DIFF):
            found = candidate
    return found


def typed_frame(matrix: np.ndarray, spec: dict[str, Any]) -> Any:
    """A numeric input matrix (``keel.serve.inputs``) as a frame with the signature's names and dtypes."""
    import pandas as pd

    frame = pd.DataFrame(matrix, columns=[c["name"] for c in spec["columns"]])
    casts = {c["name"]: ("int64" if c["kind"] == "integer" else "bool") for c in spec["columns"] if c["kind"] != "float"}
    return frame.astype(casts) if casts else frame


def warm_up_row(spec: dict[str, Any]) -> Any:
    """A one-row input shaped as the signature says (zeros, first categories), or None when it cannot be made."""
    if spec.get("type") == "tensor":
        shape = [1, *[d if d > 0 else 1 for d in spec.get("shape", [-1])[1:]]]
        return np.zeros(shape, dtype=np.float64 if spec.get("dtype") == "float" else np.int64)
    if not spec.get("columns"):
        return None
    import pandas as pd

    value = {"float": 0.0, "integer": 0, "bool": False, "string": ""}
    data: dict[str, Any] = {}
    for col in spec["columns"]:
        kind = col["kind"]
        if kind == "category":
            data[col["name"]] = pd.Categorical(col.get("categories", [])[:1], categories=col.get("categories", []))
        elif kind == "datetime":
            data[col["name"]] = pd.to_datetime(["2000-01-01"])
        else:
            data[col["name"]] = [value.get(kind, "")]
    return pd.DataFrame(data)


def load_served(uri: str, ctx: Context | None = None, *, prefer_onnx: bool = True) -> ServedModel:
    """Resolve ``uri`` once (an alias is read now, not per request) and load that version, hash-verified;
    its checked ONNX export when there is one and ``prefer_onnx`` (ONNX Runtime missing: the native flavor)."""
    ctx = _ctx(ctx)
    return load_served_version(resolve(uri, ctx), ctx, prefer_onnx=prefer_onnx)


def load_served_version(requested: ModelVersion, ctx: Context | None = None, *, prefer_onnx: bool = True) -> ServedModel:
    """``load_served`` for a version already resolved."""
    ctx = _ctx(ctx)
    if prefer_onnx and (onnx := checked_onnx_export(requested, ctx)) is not None:
        try:
            return ServedModel(requested, load(onnx.uri, ctx))
        except MissingExtra as exc:
            log.warning("serving %s in its native flavor: %s", requested.uri, exc.message)
    return ServedModel(requested, load(requested.uri, ctx))
