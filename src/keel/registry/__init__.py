"""Layer 2: the model registry: immutable versions, flavors, signatures, verified loading, aliases with history."""

from keel.registry.models import LoadedModel, PromotionRefused, alias_at, history, load, promote, register, resolve
from keel.registry.signature import infer_signature, validate_input

__all__ = [
    "LoadedModel", "PromotionRefused", "alias_at", "history", "infer_signature", "load", "promote", "register", "resolve",
    "validate_input",
]  # fmt: skip
