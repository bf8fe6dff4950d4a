"""The model a server answers with: a registered version, in its ONNX form when a checked export exists."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from keel.context import Context
from keel.context import resolve as _ctx
from keel.core.errors import MissingExtra
from keel.core.models import ModelVersion
from keel.registry import LoadedModel, load, resolve
from keel.registry.onnx_export import MAX_PROBA_DIFF, MIN_AGREEMENT
from keel.serve.tensors import DATATYPE_OF_KIND

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """``requested``: the version the URI named; ``loaded.version``: the one that answers (its ONNX export, or itself)."""

    requested: ModelVersion
    loaded: LoadedModel

    @property
    def uri(self) -> str:
        return self.loaded.version.uri

    @property
    def signature(self) -> dict[str, Any]:
        return self.loaded.version.signature

    @property
    def input_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.signature.get("inputs") or {}
        return spec

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


def load_served(uri: str, ctx: Context | None = None, *, prefer_onnx: bool = True) -> ServedModel:
    """Resolve ``uri`` once (an alias is read now, not per request) and load that version, hash-verified;
    its checked ONNX export when there is one and ``prefer_onnx`` (ONNX Runtime missing: the native flavor)."""
    ctx = _ctx(ctx)
    requested = resolve(uri, ctx)
    if prefer_onnx and (onnx := checked_onnx_export(requested, ctx)) is not None:
        try:
            return ServedModel(requested, load(onnx.uri, ctx))
        except MissingExtra as exc:
            log.warning("serving %s in its native flavor: %s", requested.uri, exc.message)
    return ServedModel(requested, load(requested.uri, ctx))
