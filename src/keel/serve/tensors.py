"""Open Inference Protocol (V2) datatypes: from signature kinds (inputs) and numpy dtypes (outputs)."""

from __future__ import annotations

from typing import Any

import numpy as np

# the V2 datatype a signature kind is advertised as; text-like kinds travel as BYTES (UTF-8 strings in JSON)
DATATYPE_OF_KIND = {
    "float": "FP64",
    "integer": "INT64",
    "bool": "BOOL",
    "string": "BYTES",
    "category": "BYTES",
    "datetime": "BYTES",
}

_FLOATS = {"FP16", "FP32", "FP64"}
_INTS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}

# the V2 datatypes a client may send for a column of each kind (as the signature's own compatibility rules)
ACCEPTED_DATATYPES = {
    "float": _FLOATS | _INTS | {"BOOL"},
    "integer": _INTS | {"BOOL"},
    "bool": {"BOOL"},
    "string": {"BYTES"},
    "category": {"BYTES"},
    "datetime": {"BYTES"},
}


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype of a model output."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(size, "FP64")
    if kind in "iu":
        return f"{'UINT' if kind == 'u' else 'INT'}{size * 8}"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def output_tensor(name: str, values: Any) -> dict[str, Any]:
    """A V2 output tensor (row-major flat data, as the protocol's JSON form)."""
    array = np.asarray(values)
    datatype = datatype_of(array)
    flat = array.ravel()
    data = flat.tolist() if datatype != "BYTES" else [str(v) for v in flat]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def flatten(data: Any) -> list[Any]:
    """V2 tensor data may be flat or nested row-major lists: flat either way."""
    if not isinstance(data, list) or not any(isinstance(v, list) for v in data):
        return data if isinstance(data, list) else [data]
    out: list[Any] = []
    for v in data:
        out.extend(flatten(v) if isinstance(v, list) else [v])
    return out
