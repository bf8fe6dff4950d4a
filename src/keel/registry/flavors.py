"""Flavors: how a kind of model is saved and loaded. Detected from the object.

scikit-learn estimators and pipelines are saved with skops (a format that loads without
running arbitrary code) when it can represent them with trusted types only, else with
cloudpickle; XGBoost and LightGBM models have their own flavors (saved with cloudpickle for
now); any other object with ``predict`` uses the generic Python flavor (cloudpickle). Bytes
are verified against their hash before any flavor sees them, and the format is read from
the bytes themselves (``sniff``), never from what a client claimed when it registered them.

Trust in a skops file is by type, never by module: skops' own default trust, plus classes
that are scikit-learn estimators (``BaseEstimator`` subclasses, checked on the imported
class), plus the two state types of tree models (``TREE_TYPES``), named exactly. A function,
or any other type, named in the file is refused: skops builds some nodes by calling the
named object, so a trusted function would run at load time.

The tree types are types, not callables: loading them runs no code of the file. skops does
not trust them by default because scikit-learn does not bounds-check their node arrays, so
a crafted file can crash the process or read memory out of bounds at predict time. keel
saves tree models with skops anyway (a pickle is worse: it runs code), and loads one from a
store it does not own (a keel server) only with the same opt-in as a pickle
(``keel.registry.models.load``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import io
import zipfile
from typing import Any

from keel.core.errors import IntegrityError, InvalidArgument, MissingExtra
from keel.core.errors import UntrustedModel as UntrustedModel  # defined in the one error tree

FORMATS = ("skops", "pickle", "onnx")
# The state of DecisionTree*, RandomForest*, ExtraTrees*, GradientBoosting* and of HistGradientBoosting*
TREE_TYPES = ("sklearn.tree._tree.Tree", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
TREE_RISK = (
    "scikit-learn does not bounds-check the node arrays of tree models, so a crafted file can crash the process "
    "or read memory out of bounds at predict time, and any client that can write to that server can register "
    "one, so keel does not load it by default."
)


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
            sio.loads(data, trusted=trusted_types(sio, data))  # it must also load back under the trust rules
            return data, "skops", requirements(("scikit-learn", "numpy", "scipy", "skops"))
        except Exception:  # noqa: BLE001 - skops cannot represent every estimator with trusted types: fall back
            return cloudpickle.dumps(model), "pickle", requirements(("scikit-learn", "numpy", "scipy", "cloudpickle"))
    if flavor in ("xgboost", "lightgbm"):
        package = "xgboost-cpu" if flavor == "xgboost" and _version("xgboost-cpu") else flavor
        return cloudpickle.dumps(model), "pickle", requirements((package, "scikit-learn", "numpy", "cloudpickle"))
    return cloudpickle.dumps(model), "pickle", requirements(("numpy", "cloudpickle"))


def is_estimator_class(name: str) -> bool:
    """Whether ``name`` ("module.Class", as skops names types) is a scikit-learn estimator class.

    Only ``sklearn.`` modules are imported to find out; skops resolves a name as
    ``getattr(import_module(module), last_part)``, so that is the one split checked.
    """
    module_name, _, attr = name.rpartition(".")
    if not (module_name == "sklearn" or module_name.startswith("sklearn.")) or not attr:
        return False
    try:
        from sklearn.base import BaseEstimator

        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(obj, type) and issubclass(obj, BaseEstimator)


def trusted_types(sio: Any, data: bytes) -> list[str]:
    """The types beyond skops' defaults that ``data`` needs; ``UntrustedModel`` if any is neither an estimator
    class nor one of ``TREE_TYPES``."""
    untrusted = sio.get_untrusted_types(data=data)
    refused = [t for t in untrusted if t not in TREE_TYPES and not is_estimator_class(t)]
    if refused:
        raise UntrustedModel(
            "the skops file names types that are neither trusted by skops nor scikit-learn estimator classes "
            "nor tree states, "
            f"so it is not loaded (a function or other object named there could run code): {', '.join(refused)}"
        )
    return list(untrusted)


def tree_types(data: bytes) -> list[str]:
    """The ``TREE_TYPES`` a skops file names (they need an opt-in when the file comes from a keel server)."""
    try:
        import skops.io as sio
    except ImportError:
        raise MissingExtra("skops", "registry") from None
    return [t for t in sio.get_untrusted_types(data=data) if t in TREE_TYPES]


def sniff(data: bytes) -> str:
    """The format of a model file, read from its bytes: ``skops``, ``pickle`` or ``onnx``."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if "schema.json" in zf.namelist():
                    return "skops"
        except zipfile.BadZipFile:
            pass
    elif len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:  # PROTO opcode, protocols 2 to 5
        return "pickle"
    elif data[:1] == b"\x08":  # protobuf tag of ModelProto.ir_version (field 1, varint), which ONNX writes first
        return "onnx"
    raise IntegrityError(f"the model file ({len(data)} bytes) is not a skops, pickle (protocol 2+) or ONNX file")


def load(data: bytes, fmt: str) -> Any:
    """Deserialise ``data``, whose format ``fmt`` was read from the bytes by ``sniff``."""
    if fmt == "skops":
        try:
            import skops.io as sio
        except ImportError:
            raise MissingExtra("skops", "registry") from None
        return sio.loads(data, trusted=trusted_types(sio, data))
    if fmt == "pickle":
        import pickle

        return pickle.loads(data)  # verified against its hash, and trusted by the caller (see models.load)
    raise InvalidArgument.for_field("model format", fmt, "'skops' or 'pickle'")
