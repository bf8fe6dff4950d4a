"""Signatures: what a model takes and returns, inferred from an input example, checked on every batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument


def to_frame_or_array(data: Any) -> Any:
    """pandas, polars, Arrow, numpy or a list of records -> a pandas DataFrame or a numpy array."""
    import pandas as pd

    module = type(data).__module__
    if isinstance(data, pd.DataFrame) or isinstance(data, np.ndarray):
        return data
    if module.startswith("polars") or module.startswith("pyarrow"):
        return data.to_pandas()
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame.from_records(data)
    if isinstance(data, (list, tuple)):
        return np.asarray(data)
    raise InvalidArgument.for_field(
        "model input", type(data).__name__, "a pandas/polars frame, an Arrow table, a numpy array or records"
    )


_KINDS: dict[Any, str] = {}


def _dtype_kind(dtype: Any) -> str:
    """The signature kind of a dtype (memoised: dtypes repeat, and this runs on every predict)."""
    try:
        return _KINDS[dtype]
    except (KeyError, TypeError):
        pass
    kind = _compute_kind(dtype)
    try:
        _KINDS[dtype] = kind
    except TypeError:
        pass
    return kind


def _compute_kind(dtype: Any) -> str:
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    # pandas' nullable and tz-aware dtypes (Float64, Int64, boolean, datetime64[ns, UTC]) carry a numpy-style kind
    kind = getattr(dtype, "kind", "O") if isinstance(dtype, pd.api.extensions.ExtensionDtype) else np.dtype(dtype).kind
    return {"i": "integer", "u": "integer", "f": "float", "b": "bool", "M": "datetime", "O": "string", "U": "string"}.get(
        kind, "other"
    )


def infer_signature(example: Any, output: Any = None) -> dict[str, Any]:
    """The input schema (columns with kinds, categories of categorical columns; or tensor dtype/shape) and output."""
    if example is None:
        return {}
    data = to_frame_or_array(example)
    if isinstance(data, np.ndarray):
        inputs: dict[str, Any] = {"type": "tensor", "dtype": _dtype_kind(data.dtype), "shape": [-1, *data.shape[1:]]}
    else:
        cols = []
        for name in data.columns:
            entry: dict[str, Any] = {
                "name": str(name),
                "kind": _dtype_kind(data[name].dtype),
                "optional": bool(data[name].isna().any()),
            }
            if entry["kind"] == "category":
                entry["categories"] = [str(c) for c in data[name].cat.categories]
            cols.append(entry)
        inputs = {"type": "dataframe", "columns": cols}
    signature: dict[str, Any] = {"inputs": inputs}
    if output is not None:
        out = np.asarray(output)
        signature["outputs"] = {"type": "tensor", "dtype": _dtype_kind(out.dtype), "shape": [-1, *out.shape[1:]]}
    return signature


_COMPATIBLE = {  # signature kind -> input kinds accepted for it
    "float": {"float", "integer", "bool"},
    "integer": {"integer", "bool"},
    "bool": {"bool"},
    "string": {"string", "category"},
    "category": {"category", "string"},
    "datetime": {"datetime"},
    "other": {"other"},
}


def violations(data: Any, signature: dict[str, Any]) -> list[str]:
    """Every way ``data`` breaks ``signature`` (empty when it fits)."""
    spec = signature.get("inputs")
    if not spec:
        return []
    found: list[str] = []
    if spec["type"] == "tensor":
        arr = np.asarray(data)
        want = spec["shape"][1:]
        if list(arr.shape[1:]) != list(want):
            found.append(f"input shape {list(arr.shape)} does not fit the signature's [-1, {', '.join(map(str, want))}]")
        kind = _dtype_kind(arr.dtype)
        if kind not in _COMPATIBLE.get(spec["dtype"], {spec["dtype"]}):
            found.append(f"input dtype {kind} where the signature expects {spec['dtype']}")
        return found
    import pandas as pd

    names = [c["name"] for c in spec["columns"]]
    if not isinstance(data, pd.DataFrame):
        width = _width_problem(np.asarray(data), names)
        if width:
            return [width]
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data), columns=names)
    # whole-frame lookups once: per-column Series access costs more than the model on a single row
    dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
    has_nulls = dict(zip(frame.columns, frame.isna().to_numpy().any(axis=0), strict=True))
    for col in spec["columns"]:
        name = col["name"]
        if name not in dtypes:
            if not col["optional"]:
                found.append(f"missing column {name!r} ({col['kind']})")
            continue
        kind = _dtype_kind(dtypes[name])
        if kind not in _COMPATIBLE.get(col["kind"], {col["kind"]}):
            found.append(f"column {name!r} is {kind}, expected {col['kind']}")
        elif "categories" in col:
            unknown = sorted(set(frame[name].dropna().astype(str)) - set(col["categories"]))
            if unknown:
                found.append(f"column {name!r} has categories outside the signature: {', '.join(unknown[:5])}")
        if not col["optional"] and has_nulls[name]:
            found.append(f"column {name!r} has missing values but the signature does not allow them")
    return found


def _width_problem(arr: np.ndarray, names: list[str]) -> str | None:
    """An array that cannot stand for the signature's columns: said in the signature's terms, not pandas'."""
    if arr.ndim == 2 and arr.shape[1] == len(names):
        return None
    shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
    got = f"{arr.shape[1]} columns" if arr.ndim == 2 else f"an array of shape {list(arr.shape)}"
    return f"expected rows of {len(names)} columns named {shown}; got {got}"


def validate_input(data: Any, signature: dict[str, Any]) -> Any:
    """Convert ``data`` and check it; raise one ``InvalidArgument`` listing every violation."""
    converted = to_frame_or_array(data)
    problems = violations(converted, signature)
    if problems:
        raise InvalidArgument(f"input does not match the model signature: {'; '.join(problems)}")
    spec = signature.get("inputs", {})
    if spec.get("type") == "dataframe":
        import pandas as pd

        names = [c["name"] for c in spec["columns"]]
        if not isinstance(converted, pd.DataFrame):
            return pd.DataFrame(np.asarray(converted), columns=names)
        if list(converted.columns) == names:
            return converted  # already in signature order: no copy
        return converted[[n for n in names if n in converted.columns]]
    return converted
