"""Request bodies -> a frame in the model signature's column order, or every violation found.

The checks run on the JSON values, before anything is converted, so that one answer lists every problem
(field, value, what was expected) instead of the first one a conversion trips on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from keel.serve.tensors import ACCEPTED_DATATYPES, flatten

MAX_LISTED = 100  # violations listed in one answer: a million bad rows must not make a million-entry body
_MISSING = object()


@dataclass(frozen=True)
class Violation:
    """One way a prediction request does not fit the model's signature: the field, the value sent, what was expected."""

    field: str
    value: Any
    expected: str

    def to_dict(self) -> dict[str, Any]:
        """As the 422 answer lists it: field, value (other than a number, bool or None: its repr, cut at 80
        characters) and expected."""
        shown = self.value if isinstance(self.value, (int, float, bool, type(None))) else repr(self.value)[:80]
        return {"field": self.field, "value": shown, "expected": self.expected}


class InputRejected(Exception):
    """The request does not fit the model: never leaves keel.serve (the app answers 422 with ``violations``)."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(f"{len(violations)} input violation(s)")
        self.violations = violations


def _expected(col: dict[str, Any]) -> str:
    kind = col["kind"]
    text = {
        "float": "a number",
        "integer": "an integer",
        "bool": "true or false",
        "string": "a string",
        "datetime": "an ISO 8601 date-time string",
    }.get(kind, f"a {kind} value")
    if kind == "category":
        text = f"one of {col.get('categories', [])}"
    return text + (" or null" if col.get("optional") else "")


def _fits(value: Any, col: dict[str, Any]) -> bool:
    if value is None:
        return bool(col.get("optional"))
    kind = col["kind"]
    if kind == "float":  # bool is an int: accepted, as the signature accepts bool columns for floats
        return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isinf(value))
    if kind == "integer":  # bool is an int too; past int64 a value cannot reach the model unchanged
        return isinstance(value, int) and -(2**63) <= value < 2**63
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "category":
        return isinstance(value, str) and value in col.get("categories", [value])
    if kind == "datetime":
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    return isinstance(value, str)


def _check(values: list[Any], col: dict[str, Any], field_of: Callable[[int], str], found: list[Violation]) -> None:
    for row, value in enumerate(values):
        if not _fits(value, col):
            found.append(Violation(field_of(row), value, _expected(col)))


def _column(values: list[Any], col: dict[str, Any]) -> Any:
    """JSON values already checked -> the column as the model saw it in training."""
    import pandas as pd

    kind, optional = col["kind"], col.get("optional")
    if kind == "float":
        return np.asarray(values, dtype=np.float64)  # None -> NaN
    if kind == "integer":
        return pd.array(values, dtype="Int64") if optional else np.asarray(values, dtype=np.int64)
    if kind == "bool":
        return pd.array(values, dtype="boolean") if optional else np.asarray(values, dtype=bool)
    if kind == "category":
        return pd.Categorical(values, categories=col["categories"])
    if kind == "datetime":
        return pd.to_datetime(values, format="ISO8601")
    return np.asarray(values, dtype=object)


_NUMERIC: dict[int, tuple[dict[str, Any], bool]] = {}  # id(spec) -> (spec, answer): a served model's spec is one dict


def is_numeric(spec: dict[str, Any]) -> bool:
    """Every column a number that float64 holds exactly as the model saw it (floats, integers, booleans; missing
    values only in float columns, as NaN). Asked on every request: answered once per signature."""
    known = _NUMERIC.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    columns = spec.get("columns") or []
    answer = bool(columns) and all(c["kind"] == "float" or (c["kind"] in ("integer", "bool") and not c.get("optional"))
                                 for c in columns)  # fmt: skip
    if len(_NUMERIC) >= 256:  # specs made per call (not a served model's) must not pile up
        _NUMERIC.clear()
    _NUMERIC[id(spec)] = (spec, answer)
    return answer


def _exact_in_float(values: Any) -> bool:
    """Integers float64 holds exactly (|v| <= 2**53): larger ones take the typed frame, never a rounded float."""
    return all(-(2**53) <= v <= 2**53 for v in values if v is not None)


def _frame(columns: dict[str, list[Any]], spec: dict[str, Any], n: int) -> Any:
    """The checked columns as the model's input: a float64 matrix in signature order when every column is numeric
    (one conversion, cheap to batch; ``ServedModel.run`` gives native models their typed frame back), else a frame."""
    if is_numeric(spec) and all(_exact_in_float(columns.get(c["name"], ())) for c in spec["columns"] if c["kind"] == "integer"):
        return np.asarray([columns.get(c["name"], [None] * n) for c in spec["columns"]], dtype=np.float64).T
    import pandas as pd

    data = {c["name"]: _column(columns.get(c["name"], [None] * n), c) for c in spec["columns"]}
    return pd.DataFrame(data)


def _finish(found: list[Violation]) -> None:
    if found:
        raise InputRejected(found[:MAX_LISTED])


def _checked_columns(columns: dict[str, list[Any]], spec: dict[str, Any], n: int, where: Callable[[str, int], str]) -> Any:
    found: list[Violation] = []
    for col in spec["columns"]:
        name = col["name"]
        if name not in columns:
            if not col.get("optional"):
                found.append(Violation(name, None, f"a column of {col['kind']} ({_expected(col)}), missing"))
            continue
        _check(columns[name], col, lambda row, name=name: where(name, row), found)  # type: ignore[misc]
    _finish(found)
    return _frame(columns, spec, n)


def _tensor(rows: Any, spec: dict[str, Any], field: str) -> np.ndarray:
    """A tensor-signature model's input: a list of rows of numbers, shaped as the signature says."""
    try:
        array = np.asarray(rows)
    except ValueError:
        raise InputRejected([Violation(field, "ragged rows", "rows of equal length")]) from None
    if array.ndim == 0 or array.shape[0] == 0:
        raise InputRejected([Violation(field, list(array.shape), "at least one row")])
    want = list(spec.get("shape", [-1])[1:])
    if list(array.shape[1:]) != want:
        raise InputRejected([Violation(f"{field}.shape", list(array.shape), f"[n, {', '.join(map(str, want))}]")])
    if array.dtype.kind not in "iufb":
        raise InputRejected([Violation(field, str(array.dtype), f"numbers ({spec.get('dtype')})")])
    return array


def from_predict_body(body: Any, spec: dict[str, Any]) -> Any:
    """``{"records": [{...}, ...]}`` or ``{"columns": {"name": [...], ...}}`` (or ``{"instances": [[...]]}`` for
    a model whose signature is a tensor) -> the model's input."""
    if not isinstance(body, dict) or len({"records", "columns", "instances"} & body.keys()) != 1:
        raise InputRejected([Violation("body", _keys(body), 'an object with one of "records", "columns" or "instances"')])
    if spec.get("type") == "tensor":
        if "instances" not in body:
            raise InputRejected([Violation("body", _keys(body), 'this model takes a tensor: {"instances": [[...], ...]}')])
        return _tensor(body["instances"], spec, "instances")
    if "records" in body:
        return _from_records(body["records"], spec)
    if "columns" in body:
        return _from_columns(body["columns"], spec)
    raise InputRejected([Violation("instances", "a tensor", "records or columns: this model takes named columns")])


def _keys(body: Any) -> Any:
    return sorted(body)[:10] if isinstance(body, dict) else type(body).__name__


def _from_records(records: Any, spec: dict[str, Any]) -> Any:
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise InputRejected([Violation("records", type(records).__name__, "a non-empty list of objects")])
    if not spec.get("columns"):
        import pandas as pd

        return pd.DataFrame.from_records(records)
    found: list[Violation] = []
    columns: dict[str, list[Any]] = {}
    for col in spec["columns"]:
        name = col["name"]
        values = [r.get(name, _MISSING) for r in records]
        absent = [i for i, v in enumerate(values) if v is _MISSING]
        if absent and not col.get("optional"):
            if len(absent) == len(records):
                found.append(Violation(name, None, f"a column of {col['kind']} ({_expected(col)}), missing"))
            else:
                found.extend(Violation(f"records[{i}].{name}", None, f"{_expected(col)}, missing") for i in absent)
            continue
        values = [None if v is _MISSING else v for v in values]
        _check(values, col, lambda row, name=name: f"records[{row}].{name}", found)  # type: ignore[misc]
        columns[name] = values
    _finish(found)
    return _frame(columns, spec, len(records))


def _from_columns(columns: Any, spec: dict[str, Any]) -> Any:
    if not isinstance(columns, dict) or not columns or not all(isinstance(v, list) for v in columns.values()):
        raise InputRejected([Violation("columns", type(columns).__name__, "an object of column name -> list of values")])
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        shown = {k: len(v) for k, v in list(columns.items())[:10]}
        raise InputRejected([Violation("columns", shown, "columns of one same, non-zero length")])
    if not spec.get("columns"):
        import pandas as pd

        return pd.DataFrame(columns)
    return _checked_columns(columns, spec, lengths.pop(), lambda name, row: f"columns.{name}[{row}]")


def _v2_structure(i: int, tensor: Any) -> list[Violation]:
    if not isinstance(tensor, dict):
        return [Violation(f"inputs[{i}]", type(tensor).__name__, "an object with name, shape, datatype and data")]
    found = []
    if not isinstance(tensor.get("name"), str):
        found.append(Violation(f"inputs[{i}].name", tensor.get("name"), "a string"))
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        found.append(Violation(f"inputs[{i}].shape", shape, "a list of non-negative integers"))
    elif shape[0] == 0:
        found.append(Violation(f"inputs[{i}].shape", shape, "at least one row"))
    if not isinstance(tensor.get("datatype"), str):
        found.append(Violation(f"inputs[{i}].datatype", tensor.get("datatype"), "a V2 datatype such as FP64 or BYTES"))
    if not isinstance(tensor.get("data"), list):
        found.append(Violation(f"inputs[{i}].data", type(tensor.get("data")).__name__, "a list"))
    elif not found and len(flat := flatten(tensor["data"])) != math.prod(shape):  # type: ignore[arg-type]
        found.append(Violation(f"inputs[{i}].data", f"{len(flat)} values", f"{math.prod(shape)} values (shape {shape})"))  # type: ignore[arg-type]
    return found


def from_v2_body(body: Any, spec: dict[str, Any]) -> Any:
    """A V2 inference request: one tensor per signature column (shape [n] or [n, 1]), or one [n, columns] tensor
    holding every column in signature order (or, for a tensor signature, that tensor)."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise InputRejected([Violation("inputs", _keys(body) if inputs is None else inputs, "a non-empty list of tensors")])
    found = [v for i, t in enumerate(inputs) for v in _v2_structure(i, t)]
    _finish(found)
    if spec.get("type") == "tensor":
        if len(inputs) != 1:
            raise InputRejected([Violation("inputs", f"{len(inputs)} tensors", "one tensor")])
        return _tensor(np.reshape(np.asarray(flatten(inputs[0]["data"])), inputs[0]["shape"]), spec, "inputs[0]")
    specs = {c["name"]: c for c in spec.get("columns", [])}
    if len(inputs) == 1 and inputs[0]["name"] not in specs and len(inputs[0]["shape"]) == 2:
        return _from_matrix(inputs[0], spec)
    columns: dict[str, list[Any]] = {}
    rows: set[int] = set()
    for i, t in enumerate(inputs):
        col = specs.get(t["name"])
        if col is None:
            found.append(
                Violation(f"inputs[{i}].name", t["name"], f"one of the model's inputs ({len(specs)}: see GET /v2/models/...)")
            )
            continue
        if len(t["shape"]) > 2 or (len(t["shape"]) == 2 and t["shape"][1] != 1):
            found.append(Violation(f"inputs[{i}].shape", t["shape"], "[n] or [n, 1]: one column"))
            continue
        if t["datatype"] not in ACCEPTED_DATATYPES.get(col["kind"], {"BYTES"}):
            found.append(Violation(f"inputs[{i}].datatype", t["datatype"], f"one of {sorted(ACCEPTED_DATATYPES[col['kind']])}"))
            continue
        rows.add(t["shape"][0])
        columns[t["name"]] = flatten(t["data"])
    if len(rows) > 1:
        found.append(Violation("inputs", sorted(rows), "tensors with one same number of rows"))
    _finish(found)
    return _checked_columns(columns, spec, rows.pop() if rows else 0, lambda name, row: f"{name}[{row}]")


def _from_matrix(tensor: dict[str, Any], spec: dict[str, Any]) -> Any:
    names = [c["name"] for c in spec["columns"]]
    n, width = tensor["shape"]
    if width != len(names):
        raise InputRejected([Violation("inputs[0].shape", tensor["shape"], f"[n, {len(names)}]: one value per model input")])
    kinds = {c["kind"] for c in spec["columns"]}
    if not all(tensor["datatype"] in ACCEPTED_DATATYPES.get(k, {"BYTES"}) for k in kinds):
        raise InputRejected([Violation("inputs[0].datatype", tensor["datatype"], "a datatype every input accepts")])
    flat = flatten(tensor["data"])
    columns = {name: flat[j::width] for j, name in enumerate(names)}
    name = tensor["name"]
    return _checked_columns(columns, spec, n, lambda col, row: f"{name}[{row}, {names.index(col)}] ({col})")
