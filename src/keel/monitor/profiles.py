"""Mergeable column profiles: what a monitor keeps of a window instead of its rows.

A numeric column is a KLL quantile sketch (Apache DataSketches, ``k = KLL_K``: rank error about 0.3%) plus exact
counts and moments (count, missing, infinite, zeros, min, max, mean and the sum of squared deviations, merged with
Chan's formula); a categorical column is a frequent-items sketch plus exact counts. Two profiles of the same
columns merge into the profile of both windows (hours into days, replicas into one) without the rows, and
``to_drift_profile`` gives the form ``keel.data.drift`` tests (the 1001-point quantile grid, category counts), so
the drift tests on a window are the ones datasets get.

>>> hour = Profile.from_table(table)                          # doctest: +SKIP
>>> day = merge_profiles(hours)                               # doctest: +SKIP
>>> drift(reference_profile, day.to_drift_profile())          # doctest: +SKIP
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument, MissingExtra
from keel.data.frames import require_arrow
from keel.data.profiling import GRID, HIST_BINS, column_kind

__all__ = ["KLL_K", "CategoricalSketch", "NumericSketch", "Profile", "merge_profiles"]

KLL_K = 1000
FREQUENT_LG_MAX = 10  # frequent items: up to 3 x 2^10 / 4 tracked values per column, exact below that
FORMAT = 1


def _datasketches() -> Any:
    try:
        import datasketches  # type: ignore[import-untyped]
    except ImportError:
        raise MissingExtra("datasketches", "monitor") from None
    return datasketches


@dataclass
class NumericSketch:
    """One numeric column of a window: a KLL sketch of its finite values and exact counts and moments."""

    kll: Any
    count: int = 0  # finite values
    missing: int = 0  # null or NaN
    infinite: int = 0
    zeros: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    min: float = math.inf
    max: float = -math.inf
    type: str = "double"

    @classmethod
    def empty(cls, type_name: str = "double") -> NumericSketch:
        return cls(_datasketches().kll_doubles_sketch(KLL_K), type=type_name)

    def add(self, values: np.ndarray, missing: int) -> None:
        finite = values[np.isfinite(values)]
        self.missing += missing
        self.infinite += int(values.size - finite.size)
        if finite.size == 0:
            return
        self.kll.update(finite)
        self.zeros += int(np.count_nonzero(finite == 0))
        self.min, self.max = min(self.min, float(finite.min())), max(self.max, float(finite.max()))
        mean = float(finite.mean())
        self._combine(int(finite.size), mean, float(np.square(finite - mean).sum()))

    def _combine(self, n: int, mean: float, m2: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    def merge(self, other: NumericSketch) -> None:
        self.kll.merge(other.kll)
        self.missing += other.missing
        self.infinite += other.infinite
        self.zeros += other.zeros
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        if other.count:
            self._combine(other.count, other.mean, other.m2)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def quantiles(self, points: Any) -> np.ndarray:
        return np.asarray(self.kll.get_quantiles(list(map(float, points))), dtype=np.float64)

    def to_drift(self, rows: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "numeric", "type": self.type, "count": self.count + self.infinite, "missing": self.missing,
            "missing_share": self.missing / rows if rows else 0.0, "infinite": self.infinite,
            "distinct_method": f"kll-sketch (k={KLL_K})", "quantiles_from": f"KLL sketch (k={KLL_K})",
        }  # fmt: skip
        if not self.count:
            return out
        grid = self.quantiles(GRID)
        grid[0], grid[-1] = self.min, self.max  # the sketch's end points are its retained items', not the extremes
        edges = np.linspace(self.min, self.max if self.max > self.min else self.min + 1.0, HIST_BINS + 1)
        cdf = np.asarray(self.kll.get_cdf(list(map(float, edges[1:-1]))), dtype=np.float64)
        counts = np.diff(np.concatenate([[0.0], cdf[:-1], [1.0]])) * self.count
        out.update({
            "min": self.min, "max": self.max, "mean": self.mean, "std": self.std, "zeros": self.zeros,
            "grid": [float(x) for x in grid],
            "histogram": {"edges": [float(e) for e in edges], "counts": [round(float(c)) for c in counts]},
        })  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric", "type": self.type, "kll": base64.b64encode(self.kll.serialize()).decode(),
            "count": self.count, "missing": self.missing, "infinite": self.infinite, "zeros": self.zeros,
            "mean": self.mean, "m2": self.m2, "min": self.min if self.count else None, "max": self.max if self.count else None,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSketch:
        kll = _datasketches().kll_doubles_sketch.deserialize(base64.b64decode(d["kll"]))
        lo, hi = d.get("min"), d.get("max")
        lowest, highest = math.inf if lo is None else float(lo), -math.inf if hi is None else float(hi)
        counts = (int(d["count"]), int(d["missing"]), int(d["infinite"]), int(d["zeros"]))
        return cls(kll, *counts, float(d["mean"]), float(d["m2"]), lowest, highest, d["type"])


@dataclass
class CategoricalSketch:
    """One categorical column of a window: a frequent-items sketch of its values (as text) and exact counts."""

    items: Any
    count: int = 0
    missing: int = 0
    type: str = "string"

    @classmethod
    def empty(cls, type_name: str = "string") -> CategoricalSketch:
        return cls(_datasketches().frequent_strings_sketch(FREQUENT_LG_MAX), type=type_name)

    def add(self, column: Any) -> None:
        import pyarrow.compute as pc

        pa = require_arrow()
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        self.missing += int(column.null_count)
        present = column.drop_null()
        self.count += len(present)
        counts = pc.value_counts(present)  # one update per distinct value, weighted: no Python per row
        for value, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
            self.items.update(_text(value), int(n))

    def merge(self, other: CategoricalSketch) -> None:
        self.items.merge(other.items)
        self.count += other.count
        self.missing += other.missing

    def frequencies(self) -> dict[str, int]:
        ds = _datasketches()
        found = self.items.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        out = {str(item): int(estimate) for item, estimate, _, _ in found}
        rest = self.count - sum(out.values())
        if rest > 0:
            out["__other__"] = rest
        return out

    def to_drift(self, rows: int) -> dict[str, Any]:
        frequencies = self.frequencies()
        top = sorted(((k, c) for k, c in frequencies.items() if k != "__other__"), key=lambda kc: -kc[1])
        return {
            "kind": "categorical", "type": self.type, "count": self.count, "missing": self.missing,
            "missing_share": self.missing / rows if rows else 0.0, "distinct": len(top),
            "distinct_method": "frequent-items sketch", "top": [[k, c] for k, c in top[:20]], "frequencies": frequencies,
        }  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        items = base64.b64encode(self.items.serialize()).decode()
        return {"kind": "categorical", "type": self.type, "items": items, "count": self.count, "missing": self.missing}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalSketch:
        items = _datasketches().frequent_strings_sketch.deserialize(base64.b64decode(d["items"]))
        return cls(items, int(d["count"]), int(d["missing"]), d["type"])


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


Sketch = NumericSketch | CategoricalSketch


@dataclass
class Profile:
    """The sketches of a window's columns and its row count; ``merge`` adds another window of the same columns."""

    rows: int = 0
    columns: dict[str, Sketch] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: Any, columns: Iterable[str] | None = None) -> Profile:
        """One pass over each column of an Arrow table (or anything ``keel.data.frames.to_arrow`` takes)."""
        from keel.data import frames
        from keel.data.profiling import numeric_values

        table = frames.to_arrow(table, what="window")
        names = list(columns) if columns is not None else list(table.column_names)
        profile = cls(rows=table.num_rows)
        for name in names:
            column = table.column(name)
            kind = column_kind(column.type)
            sketch: Sketch
            if kind == "numeric":
                numeric = NumericSketch.empty(str(column.type))
                numeric.add(*numeric_values(column))
                sketch = numeric
            elif kind == "categorical":
                sketch = CategoricalSketch.empty(str(column.type))
                sketch.add(column)
            else:  # datetimes: the time of a prediction is the window itself, not a feature to test for drift
                continue
            profile.columns[name] = sketch
        return profile

    def merge(self, other: Profile) -> Profile:
        """A new profile of both windows (neither is changed)."""
        out = Profile.from_dict(self.to_dict())
        out.rows += other.rows
        for name, sketch in other.columns.items():
            mine = out.columns.get(name)
            if mine is None:
                out.columns[name] = _copy(sketch)
            elif type(mine) is not type(sketch):
                raise InvalidArgument(f"column {name!r} is {_kind(mine)} in one profile and {_kind(sketch)} in the other")
            else:
                mine.merge(sketch)  # type: ignore[arg-type]  # same type, checked above
        return out

    def to_drift_profile(self) -> dict[str, Any]:
        """The form ``keel.data.drift`` and ``keel.data.profiling`` use (``row_count``, ``columns``)."""
        return {"row_count": self.rows, "columns": {n: s.to_drift(self.rows) for n, s in self.columns.items()}}

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data (format, row count, each column's sketch), for storing it."""
        return {"format": FORMAT, "rows": self.rows, "columns": {n: s.to_dict() for n, s in self.columns.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """The profile ``to_dict`` wrote; ``InvalidArgument`` for another format."""
        if d.get("format") != FORMAT:
            raise InvalidArgument.for_field("format", d.get("format"), f"a keel.monitor profile of format {FORMAT}")
        columns: dict[str, Sketch] = {}
        for name, c in d["columns"].items():
            columns[name] = NumericSketch.from_dict(c) if c["kind"] == "numeric" else CategoricalSketch.from_dict(c)
        return cls(int(d["rows"]), columns)


def _copy(sketch: Sketch) -> Sketch:
    if isinstance(sketch, NumericSketch):
        return NumericSketch.from_dict(sketch.to_dict())
    return CategoricalSketch.from_dict(sketch.to_dict())


def _kind(sketch: Sketch) -> str:
    return "numeric" if isinstance(sketch, NumericSketch) else "categorical"


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """One profile of every window given (hourly windows into a day, replicas into one)."""
    out = Profile()
    for profile in profiles:
        out = out.merge(profile)
    return out
