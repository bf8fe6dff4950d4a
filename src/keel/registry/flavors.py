"""Flavors: how a kind of model is saved and loaded. Detected from the object.

scikit-learn estimators and pipelines are saved with skops (a format that loads without
running arbitrary code) when it can represent them, else with cloudpickle; XGBoost and
LightGBM models have their own flavors (saved with cloudpickle for now); any other object
with ``predict`` uses the generic Python flavor (cloudpickle). Bytes are verified
against their hash before any flavor sees them.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from keel.core.errors import InvalidArgument, MissingExtra

SAFE_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "collections.", "skops.")
SAFE_BUILTINS = {  # plain data types only: never exec, eval, getattr, open, __import__
    f"builtins.{name}"
    for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes", "bool", "slice",
                 "NoneType", "type", "object")
}  # fmt: skip


def _is_sklearn(obj: Any) -> bool:
    return any(c.__module__.startswith("sklearn.") for c in type(obj).__mro__)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirements(packages: tuple[str, ...]) -> list[str]:
    return [f"{p}=={v}" for p in packages if (v := _version(p))]


def detect(model: Any) -> str:
    if not hasattr(model, "predict") or not callable(model.predict):
        raise InvalidArgument.for_field("model", type(model).__name__, "an object with a predict method")
    module = type(model).__module__
    if module.startswith("xgboost"):
        return "xgboost"
    if module.startswith("lightgbm"):
        return "lightgbm"
    return "sklearn" if _is_sklearn(model) else "python"


def save(model: Any, flavor: str) -> tuple[bytes, str, list[str]]:
    """(bytes, format, requirements) for ``model``."""
    import cloudpickle

    if flavor == "sklearn":
        try:
            import skops.io as sio
        except ImportError:
            raise MissingExtra("skops", "registry") from None
        try:
            data = sio.dumps(model)
            sio.loads(data, trusted=_trusted(sio, data))  # it must also load back safely
            return data, "skops", requirements(("scikit-learn", "numpy", "scipy", "skops"))
        except Exception:  # noqa: BLE001 - skops cannot represent every estimator: fall back, and say so
            return cloudpickle.dumps(model), "pickle", requirements(("scikit-learn", "numpy", "scipy", "cloudpickle"))
    if flavor in ("xgboost", "lightgbm"):
        package = "xgboost-cpu" if flavor == "xgboost" and _version("xgboost-cpu") else flavor
        return cloudpickle.dumps(model), "pickle", requirements((package, "scikit-learn", "numpy", "cloudpickle"))
    return cloudpickle.dumps(model), "pickle", requirements(("numpy", "cloudpickle"))


def _trusted(sio: Any, data: bytes) -> list[str]:
    untrusted = sio.get_untrusted_types(data=data)
    unsafe = [t for t in untrusted if not (t.startswith(SAFE_MODULE_PREFIXES) or t in SAFE_BUILTINS)]
    if unsafe:
        raise InvalidArgument(f"the model file references types outside scikit-learn/numpy/scipy: {', '.join(unsafe)}")
    return list(untrusted)


def load(data: bytes, fmt: str) -> Any:
    if fmt == "skops":
        import skops.io as sio

        return sio.loads(data, trusted=_trusted(sio, data))
    if fmt == "pickle":
        import pickle

        return pickle.loads(data)  # verified against its hash by the artifact store first
    raise InvalidArgument.for_field("model format", fmt, "'skops' or 'pickle'")
