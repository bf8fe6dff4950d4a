"""Column profiles, computed once per dataset version and stored with it.

One pass per column over Arrow/numpy: a numeric column is sorted once, and count,
distinct values, extremes, moments, quantiles and the histogram all come from that
sort. Categorical columns use Arrow's hash-based value counts. Every numeric profile
keeps a 1001-point quantile grid, so drift tests can run against a stored profile
without reloading the reference data.

Above ``SAMPLE_ABOVE`` rows, numeric quantiles come from a uniform sample and distinct
counts from a KMV sketch; the profile says so (``distinct_method``, ``quantiles_from``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from keel.core.dataset_records import MAX_CATEGORY_CHARS
from keel.data.frames import require_arrow

GRID = np.linspace(0.0, 1.0, 1001)
HIST_BINS = 20
TOP = 20
MAX_FREQUENCIES = 500
SAMPLE_ABOVE = 5_000_000
SAMPLE_SIZE = 1_000_000
KMV_K = 4096
SUMMARY_QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}


def column_kind(arrow_type: Any) -> str:
    pa = require_arrow()
    t = pa.types
    if t.is_boolean(arrow_type):
        return "categorical"
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "numeric"
    if t.is_temporal(arrow_type):
        return "datetime"
    return "categorical"


def numeric_values(column: Any) -> tuple[np.ndarray, int]:
    """Finite-or-infinite float64 values without nulls/NaN, and how many were missing."""
    pa = require_arrow()
    import pyarrow.compute as pc

    floats = pc.cast(column, pa.float64()) if not pa.types.is_floating(column.type) else column
    arr = floats.to_numpy(zero_copy_only=False) if hasattr(floats, "to_numpy") else np.asarray(floats)
    arr = np.asarray(arr, dtype=np.float64)
    present = arr[~np.isnan(arr)]
    return present, int(arr.size - present.size)


def _sorted_quantiles(s: np.ndarray, points: np.ndarray) -> np.ndarray:
    pos = points * (s.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, s.size - 1)
    frac = pos - lo
    quantiles: np.ndarray = s[lo] + (s[hi] - s[lo]) * frac  # numpy types fancy indexing as Any
    return quantiles


def _kmv_distinct(values: np.ndarray, k: int = KMV_K) -> int:
    """Distinct count from the k smallest 64-bit hashes (K-minimum values sketch)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = (bits ^ (bits >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    m = min(h.size, 8 * k)
    smallest = np.unique(np.partition(h, m - 1)[:m]) if m < h.size else np.unique(h)
    if smallest.size < k:
        return int(np.unique(h).size)
    return int((k - 1) / (float(smallest[k - 1]) / 2.0**64))


def _numeric_profile(column: Any, n: int, kind: str) -> dict[str, Any]:
    values, missing = numeric_values(column)
    out: dict[str, Any] = {"kind": kind, "count": int(values.size), "missing": missing, "missing_share": _share(missing, n)}
    if values.size == 0:
        out.update({"distinct": 0, "distinct_method": "exact"})
        return out
    finite = values[np.isfinite(values)]
    out["infinite"] = int(values.size - finite.size)
    sampled = finite.size > SAMPLE_ABOVE
    if sampled:
        rng = np.random.default_rng(0)
        s = np.sort(rng.choice(finite, SAMPLE_SIZE, replace=False))
        out["distinct"] = _kmv_distinct(finite)
        out["distinct_method"] = f"kmv-sketch (k={KMV_K})"
        out["quantiles_from"] = f"uniform sample of {SAMPLE_SIZE:,}"
    else:
        s = np.sort(finite)
        out["distinct"] = int(1 + np.count_nonzero(np.diff(s))) if s.size else 0
        out["distinct_method"] = "exact"
        out["quantiles_from"] = "all values"
    if s.size == 0:
        return out
    out["min"] = float(s[0])
    out["max"] = float(s[-1])
    out["mean"] = float(finite.mean())
    out["std"] = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    out["zeros"] = int(np.count_nonzero(finite == 0))
    qs = _sorted_quantiles(s, np.array(list(SUMMARY_QUANTILES.values())))
    out["quantiles"] = {k: float(q) for k, q in zip(SUMMARY_QUANTILES, qs, strict=True)}
    out["grid"] = [float(x) for x in _sorted_quantiles(s, GRID)]
    lo, hi = float(s[0]), float(s[-1])
    if hi == lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    counts = np.diff(np.searchsorted(s, edges, side="left"))
    counts[-1] += int(np.count_nonzero(s == s[-1])) if s[-1] == edges[-1] else 0
    scale = finite.size / s.size
    out["histogram"] = {"edges": [float(e) for e in edges], "counts": [round(float(c) * scale) for c in counts]}
    return out


def _categorical_profile(column: Any, n: int) -> dict[str, Any]:
    import pyarrow.compute as pc

    pa = require_arrow()
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    missing = int(column.null_count)
    counts = pc.value_counts(column.drop_null() if hasattr(column, "drop_null") else column)
    values = counts.field("values").to_pylist()
    freq = counts.field("counts").to_numpy()
    order = np.argsort(-freq, kind="stable")
    top = order[:MAX_FREQUENCIES]
    texts = [_text(values[i]) for i in top]
    # personal data never lands in the store through a profile: the kept values are masked whole, before a long one
    # is cut (a cut address would no longer be found) and hashed (an unsalted hash of an address can be guessed)
    texts, kinds = _mask_pii(texts)
    frequencies: dict[str, int] = {}
    for text, i in zip(texts, top, strict=True):  # masking can merge values (two cards ending 4242): counts add up
        key = _key(text)
        frequencies[key] = frequencies.get(key, 0) + int(freq[i])
    rest = sum(int(freq[i]) for i in order[MAX_FREQUENCIES:])
    if rest:
        frequencies["__other__"] = rest
    return {
        "kind": "categorical",
        "count": n - missing,
        "missing": missing,
        "missing_share": _share(missing, n),
        "distinct": len(order),
        "distinct_method": "exact",
        "top": [[k, c] for k, c in sorted(frequencies.items(), key=lambda kc: -kc[1]) if k != "__other__"][:TOP],
        "frequencies": frequencies,
        **({"pii": list(kinds)} if kinds else {}),
    }


def _mask_pii(texts: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``texts`` with their PII masked, and the kinds found (none: the texts as they were)."""
    from keel.data.pii import mask_values

    masked, kinds = mask_values(texts)
    return (masked, kinds) if kinds else (texts, ())


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _key(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if len(text) > MAX_CATEGORY_CHARS:
        # stores refuse longer category values (profiles are bounded); a hash keeps long values apart
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        text = f"{text[: MAX_CATEGORY_CHARS - 40]}... ({digest})"
    return text


def _share(part: int, n: int) -> float:
    return part / n if n else 0.0


def _datetime_profile(column: Any, n: int) -> dict[str, Any]:
    import pyarrow.compute as pc

    missing = int(column.null_count)
    out: dict[str, Any] = {"kind": "datetime", "count": n - missing, "missing": missing, "missing_share": _share(missing, n)}
    if n - missing:
        bounds = pc.min_max(column)
        out["min"] = str(bounds["min"].as_py())
        out["max"] = str(bounds["max"].as_py())
        out["distinct"] = int(pc.count_distinct(column).as_py())
        out["distinct_method"] = "exact"
    return out


def compute_profile(table: Any, *, on_column: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Profile every column of an Arrow table; ``on_column`` is called after each (progress bars)."""
    started = time.perf_counter()
    n = table.num_rows
    columns: dict[str, Any] = {}
    for field in table.schema:
        column = table.column(field.name)
        kind = column_kind(field.type)
        if kind == "numeric":
            profile = _numeric_profile(column, n, kind)
        elif kind == "datetime":
            profile = _datetime_profile(column, n)
        else:
            profile = _categorical_profile(column, n)
        profile["type"] = str(field.type)
        columns[field.name] = profile
        if on_column is not None:
            on_column(field.name)
    return {"row_count": n, "columns": columns, "seconds": round(time.perf_counter() - started, 4)}


def summary_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per column, for tables."""
    rows = []
    for name, col in profile["columns"].items():
        row = {"column": name, "type": col["type"], "kind": col["kind"], "missing": col["missing"]}
        row["distinct"] = col.get("distinct")
        if col["kind"] == "numeric":
            row.update({k: col.get(k) for k in ("min", "mean", "max", "std")})
        elif col["kind"] == "categorical":
            row["top"] = ", ".join(f"{k} ({c})" for k, c in col.get("top", [])[:3])
        else:
            row.update({"min": col.get("min"), "max": col.get("max")})
        rows.append(row)
    return rows
