"""What a dataset version may record: a transform (plain JSON) and a column profile (a known shape).

Both come from clients, and a server never trusts its clients: stores check them before
anything is written, and ``keel.data`` checks them at the call so that a mistake is named
where it was made. Reports and drift read stored profiles, so a profile must have the
structure, types and sizes that ``keel.data.profiling`` produces - a forged one is refused.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.core import validation as v
from keel.core.datasets import ColumnSchema
from keel.core.errors import InvalidArgument

MAX_JSON_DEPTH = 32
MAX_TRANSFORM_BYTES = 1_000_000
GRID_POINTS = 1001
MAX_CATEGORY_CHARS = 1024  # profiling shortens longer category values to fit
MAX_CATEGORIES = 1001  # the 500 most frequent and "__other__" today; room to grow
MAX_TOP = 1000
MAX_HISTOGRAM_EDGES = 1001
MAX_SUMMARY_QUANTILES = 32
MAX_LABEL_CHARS = 256
KINDS = ("numeric", "categorical", "datetime")
ROLES = ("data", "quarantine")
"""What a version holds: the data itself, or the rows a suite quarantined."""
MAX_SUITE_CHARS = 256


def plain_json(value: Any, field: str) -> Any:
    """A copy of ``value`` as plain JSON (str, int, finite float, bool, None, list, dict with str keys).

    Anything else raises ``InvalidArgument`` naming the path inside ``field`` and the value,
    e.g. ``transform['params']['value'] must be ...; got <object ...>``. Tuples become lists.
    Non-finite floats are refused: JSON has no NaN, and backends would disagree on it.
    """
    out = _plain(value, field, 0, set())
    size = len(json.dumps(out))
    if size > MAX_TRANSFORM_BYTES:
        raise InvalidArgument.for_field(field, f"{size:,} bytes of JSON", f"at most {MAX_TRANSFORM_BYTES:,} bytes of JSON")
    return out


def _plain(value: Any, path: str, depth: int, inside: set[int]) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise InvalidArgument.for_field(path, "...", f"JSON nested at most {MAX_JSON_DEPTH} levels deep")
    if id(value) in inside:
        raise InvalidArgument.for_field(path, "a reference to a container that holds it", "JSON-serialisable (no cycles)")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument.for_field(path, value, "a finite number (JSON has no NaN or infinity)")
        return float(value)
    if isinstance(value, (Mapping, list, tuple)):
        inside = inside | {id(value)}
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidArgument.for_field(f"{path} key", key, "a string (JSON object keys are strings)")
                out[key] = _plain(item, f"{path}[{key!r}]", depth + 1, inside)
            return out
        return [_plain(item, f"{path}[{i}]", depth + 1, inside) for i, item in enumerate(value)]
    expected = "JSON-serialisable (str, int, finite float, bool, None, list, dict with str keys)"
    raise InvalidArgument.for_field(path, value, f"{expected}, not {type(value).__name__}")


# -- profiles -------------------------------------------------------------------------------

Checker = Callable[[Any, str], None]


def _fail(path: str, value: Any, expected: str) -> None:
    raise InvalidArgument.for_field(path, value, expected)


def _count(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(path, value, "a non-negative integer")


def _number(value: Any, path: str) -> None:
    # None: JSON encoders write an infinite mean (overflow) as null
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        _fail(path, value, "a number")


def _share(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        _fail(path, value, "a share between 0 and 1")


def _label(value: Any, path: str) -> None:
    if not isinstance(value, str) or len(value) > MAX_LABEL_CHARS:
        _fail(path, value, f"a string of at most {MAX_LABEL_CHARS} characters")


def _category(value: Any, path: str) -> None:
    if not isinstance(value, str) or len(value) > MAX_CATEGORY_CHARS:
        _fail(path, value, f"a string of at most {MAX_CATEGORY_CHARS} characters")


def _numbers(value: Any, path: str, *, exactly: int | None = None, at_most: int = GRID_POINTS) -> list[float]:
    if not isinstance(value, list) or (exactly is not None and len(value) != exactly) or len(value) > at_most:
        _fail(path, value, f"a list of {exactly if exactly is not None else f'at most {at_most}'} numbers")
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            _fail(f"{path}[{i}]", x, "a number")
    return value  # type: ignore[no-any-return]


def _grid(value: Any, path: str) -> None:
    grid = _numbers(value, path, exactly=GRID_POINTS)
    # drift reads it as a CDF; the slack allows for interpolation rounding in honest profiles
    if any(b < a - 1e-9 * max(1.0, abs(a)) for a, b in itertools.pairwise(grid)):
        _fail(path, "a decreasing sequence", "the column's quantiles in non-decreasing order")


def _quantiles(value: Any, path: str) -> None:
    if not isinstance(value, dict) or len(value) > MAX_SUMMARY_QUANTILES:
        _fail(path, value, f"a mapping of at most {MAX_SUMMARY_QUANTILES} quantiles")
    for key, x in value.items():
        _label(key, f"{path} key")
        _number(x, f"{path}[{key!r}]")


def _histogram(value: Any, path: str) -> None:
    if not isinstance(value, dict) or set(value) != {"edges", "counts"}:
        _fail(path, value, "a mapping with 'edges' and 'counts'")
    edges = _numbers(value["edges"], f"{path}.edges", at_most=MAX_HISTOGRAM_EDGES)
    counts = value["counts"]
    if not isinstance(counts, list) or len(counts) != max(len(edges) - 1, 0):
        _fail(f"{path}.counts", counts, "one count per bin (one fewer than the edges)")
    for i, c in enumerate(counts):
        _count(c, f"{path}.counts[{i}]")


def _top(value: Any, path: str) -> None:
    if not isinstance(value, list) or len(value) > MAX_TOP:
        _fail(path, value, f"a list of at most {MAX_TOP} [value, count] pairs")
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            _fail(f"{path}[{i}]", pair, "a [value, count] pair")
        _category(pair[0], f"{path}[{i}][0]")
        _count(pair[1], f"{path}[{i}][1]")


def _frequencies(value: Any, path: str) -> None:
    if not isinstance(value, dict) or len(value) > MAX_CATEGORIES:
        _fail(path, value, f"a mapping of at most {MAX_CATEGORIES} categories to counts")
    for key, c in value.items():
        _category(key, f"{path} key")
        _count(c, f"{path}[{key!r}]")


def _kind(value: Any, path: str) -> None:
    if value not in KINDS:
        _fail(path, value, f"one of {', '.join(KINDS)}")


def _pii_kinds(value: Any, path: str) -> None:
    """The kinds of personal data found in a column's kept values (which the profile holds masked)."""
    if not isinstance(value, list) or len(value) > 20:
        _fail(path, value, "a list of PII kinds")
    for kind in value:
        _label(kind, f"{path}[]")


_COMMON: dict[str, Checker] = {
    "kind": _kind, "type": _label, "count": _count, "missing": _count, "missing_share": _share,
}  # fmt: skip
_OPTIONAL: dict[str, dict[str, Checker]] = {
    "numeric": {
        "distinct": _count, "distinct_method": _label, "infinite": _count, "quantiles_from": _label,
        "min": _number, "max": _number, "mean": _number, "std": _number, "zeros": _count,
        "quantiles": _quantiles, "grid": _grid, "histogram": _histogram,
    },
    "categorical": {"distinct": _count, "distinct_method": _label, "pii": _pii_kinds},
    "datetime": {"distinct": _count, "distinct_method": _label, "min": _label, "max": _label},
}  # fmt: skip
_REQUIRED: dict[str, dict[str, Checker]] = {
    "numeric": _COMMON,
    "categorical": {**_COMMON, "top": _top, "frequencies": _frequencies},
    "datetime": _COMMON,
}


def _column(col: Any, path: str, row_count: int) -> None:
    if not isinstance(col, dict):
        _fail(path, col, "a mapping (a column profile)")
    _kind(col.get("kind"), f"{path}.kind")
    required, optional = _REQUIRED[col["kind"]], _OPTIONAL[col["kind"]]
    for key, value in col.items():
        check = required.get(key) or optional.get(key)
        if check is None:
            _fail(f"{path} key", key, f"one of {', '.join([*required, *optional])}")
        else:
            check(value, f"{path}.{key}")
    for key in required:
        if key not in col:
            _fail(f"{path}.{key}", None, "present")
    if col["count"] + col["missing"] != row_count:
        _fail(f"{path}.count + missing", col["count"] + col["missing"], f"the row count, {row_count}")


def check_profile(profile: Any, columns: Sequence[str], row_count: int) -> dict[str, Any]:
    """``profile`` if it has the shape ``keel.data`` computes for a table of these columns and rows.

    Checks the structure, types and sizes of every field, and that it describes ``columns``
    and ``row_count``; raises ``InvalidArgument`` naming the first field that does not.
    """
    if not isinstance(profile, Mapping):
        _fail("profile", profile, "a mapping with 'row_count' and 'columns'")
    allowed = {"row_count", "columns", "seconds"}
    for key in profile:
        if key not in allowed:
            _fail("profile key", key, f"one of {', '.join(sorted(allowed))}")
    if profile.get("row_count") != row_count or isinstance(profile.get("row_count"), bool):
        _fail("profile.row_count", profile.get("row_count"), f"the version's row count, {row_count}")
    if "seconds" in profile:
        _number(profile["seconds"], "profile.seconds")
    cols = profile.get("columns")
    if not isinstance(cols, Mapping) or set(cols) != set(columns):
        shown = list(cols)[:5] if isinstance(cols, Mapping) else cols
        _fail("profile.columns", shown, f"one profile per column of the schema ({', '.join(columns)[:200]})")
    for name, col in cols.items():
        _column(col, f"profile.columns[{name[:40]!r}]", row_count)
    return dict(profile)


@dataclass(frozen=True, slots=True)
class CheckedDatasetVersion:
    """The validated fields of a version about to be recorded."""

    content_hash: str
    artifact_sha256: str
    size: int
    row_count: int
    schema: tuple[ColumnSchema, ...]
    source: str
    role: str
    transform: dict[str, Any] | None  # plain JSON
    profile: dict[str, Any] | None


def check_schema(schema: Any) -> tuple[ColumnSchema, ...]:
    """A version's schema: a non-empty list of ``ColumnSchema``."""
    if not isinstance(schema, (list, tuple)) or not schema:
        raise InvalidArgument.for_field("schema", schema, "a non-empty list of columns")
    for col in schema:
        if not isinstance(col, ColumnSchema) or not isinstance(col.name, str) or not isinstance(col.type, str):
            raise InvalidArgument.for_field("schema column", col, "a ColumnSchema(name, type, nullable)")
    return tuple(schema)


def check_dataset_version(
    name: Any,
    *,
    content_hash: Any,
    artifact_sha256: Any,
    size: Any,
    row_count: Any,
    schema: Any,
    source: Any = "",
    role: Any = "data",
    transform: Any = None,
    profile: Any = None,
) -> CheckedDatasetVersion:
    """Every argument of ``DatasetStore.log_version``, checked (``InvalidArgument`` names the first bad one)."""
    v.check_name(name, "dataset name")
    v.check_sha256(content_hash)
    v.check_sha256(artifact_sha256)
    cols = check_schema(schema)
    if role not in ROLES:
        raise InvalidArgument.for_field("role", role, f"one of {', '.join(ROLES)}")
    v.check_count(size, "size")
    v.check_count(row_count, "row_count")
    if transform is not None and not isinstance(transform, Mapping):
        raise InvalidArgument.for_field("transform", transform, "a mapping (name, code hash, params)")
    record = plain_json(dict(transform), "transform") if transform else None
    if profile is not None:
        # reports and drift read stored profiles: refuse any shape keel.data does not compute
        check_profile(profile, [c.name for c in cols], row_count)
    return CheckedDatasetVersion(
        content_hash=content_hash,
        artifact_sha256=artifact_sha256,
        size=size,
        row_count=row_count,
        schema=cols,
        source=source or "",
        role=role,
        transform=record or None,
        profile=dict(profile) if profile is not None else None,
    )


def check_suite(suite: Any) -> str:
    """The name of a validation suite."""
    if not isinstance(suite, str) or not suite or len(suite) > MAX_SUITE_CHARS:
        raise InvalidArgument.for_field("suite", suite, f"a name of 1-{MAX_SUITE_CHARS} characters")
    return suite


__all__ = [
    "GRID_POINTS",
    "MAX_CATEGORY_CHARS",
    "ROLES",
    "CheckedDatasetVersion",
    "check_dataset_version",
    "check_profile",
    "check_schema",
    "check_suite",
    "plain_json",
]
