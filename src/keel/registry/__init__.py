"""Layer 2: the model registry: immutable versions, flavors, signatures, verified loading, aliases with history."""

from keel.registry.export import card_markdown, edge_bundle, export_onnx, write_card
from keel.registry.flavors import UntrustedModel
from keel.registry.models import LoadedModel, PromotionRefused, alias_at, history, load, promote, register, resolve
from keel.registry.signature import infer_signature, validate_input

__all__ = [
    "LoadedModel",
    "PromotionRefused",
    "UntrustedModel",
    "alias_at",
    "card_markdown",
    "edge_bundle",
    "export_onnx",
    "history",
    "infer_signature",
    "load",
    "promote",
    "register",
    "resolve",
    "validate_input",
    "write_card",
]  # fmt: skip
