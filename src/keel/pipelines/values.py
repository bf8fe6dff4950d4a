"""Hashing step inputs (for cache keys) and storing step outputs (content-addressed artifacts).

A step output is a pickle, and unpickling runs code. The step cache accepts an entry only from
the run that produced it, but that is a consistency check, not authentication: any client that
can write to a keel server can create a running step run with the right tags and its own
``output.pkl``. So a cached pickle served by a keel server is loaded only with the same opt-in
as a registry pickle (``trust_pickle``), unless this process stored those very bytes itself
(outputs are content-addressed: a pipeline's own intermediate outputs never need the opt-in).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from keel.context import Context
from keel.core.datasets import DatasetVersion
from keel.core.errors import InvalidArgument
from keel.pipelines.steps import StepOutput
from keel.store.artifacts import ArtifactStore

_STORED: set[str] = set()  # sha256 of the outputs this process stored (or its own workers stored for it)
CACHE_RISK = (
    "unpickling runs any code the file contains. The step cache takes an entry only from the run that produced "
    "it, but that is a consistency check, not authentication: any client that can write to that server can "
    "create such a step run with its own pickle, so keel does not unpickle it by default."
)


def _is_frame(value: Any) -> bool:
    name = type(value).__name__
    module = type(value).__module__
    return (name == "DataFrame" and module.startswith(("pandas", "polars"))) or (name == "Table" and module.startswith("pyarrow"))


class _NotPlain(Exception):
    pass


def _canonical(value: Any) -> Any:
    """A JSON form that keeps what JSON would blur: tuples vs lists, non-string dict keys, sets. Not
    ``steps.walk``: this walk tags each container's type into the output (and fails on anything not plain)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_canonical(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _canonical(v) for k, v in value.items()}
        return {"__dict__": sorted([[type(k).__name__, repr(k), _canonical(v)] for k, v in value.items()], key=repr)}
    if isinstance(value, (set, frozenset)):
        return {"__set__": sorted(repr(v) for v in value)}
    raise _NotPlain


def value_hash(value: Any, where: str) -> str:
    """A stable hash of a literal input: typed JSON for plain data, content hash for frames (with a
    pandas frame's index), else pickled bytes."""
    if isinstance(value, DatasetVersion):
        return "dataset:" + value.content_hash
    if _is_frame(value):
        from keel.data.frames import content_hash, to_arrow

        if type(value).__module__.startswith("pandas"):
            import pyarrow as pa

            return "frame:" + content_hash(pa.Table.from_pandas(value, preserve_index=True))  # the index is data too
        return "frame:" + content_hash(to_arrow(value))
    try:
        plain = json.dumps(_canonical(value), sort_keys=True, allow_nan=True)
        return "json:" + hashlib.sha256(plain.encode()).hexdigest()
    except (_NotPlain, TypeError, ValueError):
        pass
    try:
        import cloudpickle

        return "pickle:" + hashlib.sha256(cloudpickle.dumps(value)).hexdigest()
    except Exception as exc:  # noqa: BLE001 - any pickling failure means: cannot be hashed
        raise InvalidArgument(f"{where} ({type(value).__name__}) cannot be hashed for the step cache: {exc}") from None


def input_key(value: Any, keys: dict[str, str], where: str) -> Any:
    """The cache-key form of an argument: upstream outputs stand for their step's cache key. Not ``steps.walk``:
    the key records each container's type and dict keys, and the path of a value that cannot be hashed."""
    if isinstance(value, StepOutput):
        return {"from": keys[value.node_id], "index": value.index}
    if isinstance(value, (list, tuple)):
        items = [input_key(v, keys, f"{where}[{i}]") for i, v in enumerate(value)]
        return {type(value).__name__: items}
    if isinstance(value, dict) and any(isinstance(v, (StepOutput, list, tuple, dict)) for v in value.values()):
        entries = [[type(k).__name__, repr(k), input_key(v, keys, f"{where}[{k!r}]")] for k, v in value.items()]
        return {"dict": sorted(entries, key=lambda e: (e[0], e[1]))}
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
    ref = OutputRef("pickle", info.sha256, info.size)
    remember_output(ref)
    return ref


def remember_output(ref: OutputRef) -> None:
    """Note an output this process stored, or a worker it started stored for it: its own, trusted without opt-in."""
    if ref.kind == "pickle":
        _STORED.add(ref.sha256)


def check_output_trust(ref: OutputRef, ctx: Context, step: str, source_run: str, trust_pickle: bool | None) -> None:
    """Refuse a cached pickle served by a keel server (``UntrustedModel``) unless this process stored it, its writer
    is trusted (the caller itself or a trusted role: ``check_pickle_trust``) or the caller opted in (``trust_pickle``,
    else the ``trust_pickle`` setting). Datasets are data: always fine."""
    if ref.kind != "pickle" or ref.sha256 in _STORED:
        return
    from keel.registry.models import check_pickle_trust

    what = f"step {step!r} would reuse the cached output of run {source_run}, a pickle"
    check_pickle_trust(ctx, what, trust_pickle, why=CACHE_RISK, sha256=ref.sha256)


def load_output(ref: OutputRef, artifacts: ArtifactStore, ctx: Context | None = None) -> Any:
    """The output ``ref`` points to (a dataset version is looked up in ``ctx``, default: the current context).
    A pickle is unpickled as it is: a reference read from a store must pass ``check_output_trust`` first (the
    runner checks each cache hit)."""
    if ref.kind == "dataset":
        from keel.data.dataset_versions import resolve

        return resolve(ref.dataset, ctx)
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
