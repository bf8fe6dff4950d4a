"""Hashing step inputs (for cache keys) and storing step outputs (content-addressed artifacts)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from keel.core.datasets import DatasetVersion
from keel.core.errors import InvalidArgument
from keel.pipelines.steps import StepOutput
from keel.store.artifacts import ArtifactStore


def _is_frame(value: Any) -> bool:
    name = type(value).__name__
    module = type(value).__module__
    return (name == "DataFrame" and module.startswith(("pandas", "polars"))) or (name == "Table" and module.startswith("pyarrow"))


def value_hash(value: Any, where: str) -> str:
    """A stable hash of a literal input: JSON when it is JSON, content hash for frames, else pickled bytes."""
    if isinstance(value, DatasetVersion):
        return "dataset:" + value.content_hash
    if _is_frame(value):
        from keel.data.frames import content_hash, to_arrow

        return "frame:" + content_hash(to_arrow(value))
    try:
        return "json:" + hashlib.sha256(json.dumps(value, sort_keys=True, allow_nan=True).encode()).hexdigest()
    except (TypeError, ValueError):
        pass
    try:
        import cloudpickle

        return "pickle:" + hashlib.sha256(cloudpickle.dumps(value)).hexdigest()
    except Exception as exc:  # noqa: BLE001 - any pickling failure means: cannot be hashed
        raise InvalidArgument(f"{where} ({type(value).__name__}) cannot be hashed for the step cache: {exc}") from None


def input_key(value: Any, keys: dict[str, str], where: str) -> Any:
    """The cache-key form of an argument: upstream outputs stand for their step's cache key."""
    if isinstance(value, StepOutput):
        return {"from": keys[value.node_id], "index": value.index}
    if isinstance(value, (list, tuple)):
        return [input_key(v, keys, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and any(isinstance(v, (StepOutput, list, tuple, dict)) for v in value.values()):
        return {str(k): input_key(v, keys, f"{where}[{k!r}]") for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return value_hash(value, where)


def cache_key(step_name: str, code_hash: str, args: Any, kwargs: Any) -> str:
    payload = json.dumps({"step": step_name, "code": code_hash, "args": args, "kwargs": kwargs}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class OutputRef:
    """Where a step's output lives: a pickled blob, or a dataset version."""

    kind: str  # "pickle" or "dataset"
    sha256: str = ""
    size: int = 0
    dataset: str = ""  # "name@version" for kind "dataset"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputRef:
        return cls(**data)


def store_output(value: Any, artifacts: ArtifactStore, step: str) -> OutputRef:
    if isinstance(value, DatasetVersion):
        return OutputRef("dataset", value.artifact_sha256, value.size, value.ref)
    import cloudpickle

    try:
        blob = cloudpickle.dumps(value)
    except Exception as exc:  # noqa: BLE001 - a value that cannot be pickled cannot be stored
        raise InvalidArgument(
            f"step {step!r} returned a {type(value).__name__} that cannot be stored: {exc}; "
            "return data (frames, arrays, models, dicts), not handles such as files, locks or generators"
        ) from None
    info = artifacts.put_bytes(blob)
    return OutputRef("pickle", info.sha256, info.size)


def load_output(ref: OutputRef, artifacts: ArtifactStore) -> Any:
    if ref.kind == "dataset":
        from keel.data.dataset_versions import resolve

        return resolve(ref.dataset)
    import pickle

    return pickle.loads(artifacts.get_bytes(ref.sha256))  # verified against its hash first


def select(value: Any, index: Any) -> Any:
    """Apply a StepOutput's index (``out[0]``, ``out["model"]``, nested ``(0, "a")``) to a value."""
    if index is None:
        return value
    if isinstance(index, tuple):
        for part in index:
            value = value[part]
        return value
    return value[index]
