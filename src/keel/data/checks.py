"""Validation checks: small dataclasses evaluated vectorised over Arrow columns.

Each check returns a ``CheckResult`` and, when it judges rows one by one, the mask of failing
rows (``None`` for checks on the whole column or table), so a caller can split failing rows
off into a quarantine version.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from keel.core.errors import InvalidArgument
from keel.data import pii
from keel.data.frames import require_arrow
from keel.data.profiling import column_kind

SEVERITIES = ("error", "warn")
TYPE_FAMILIES = ("numeric", "integer", "float", "string", "bool", "datetime", "categorical")
EXAMPLES = 5
_CUSTOM: dict[str, Callable[[Any], Any]] = {}


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check: passed or not, its severity, how many rows (and what share) failed, a few
    example values (or rows), and a message (``"ok"`` when it passed)."""

    kind: str
    column: str | None
    passed: bool
    severity: str
    failed_count: int = 0
    failed_share: float = 0.0
    examples: list[Any] = field(default_factory=list)
    message: str = ""

    def __post_init__(self) -> None:  # numpy scalars in, plain JSON-ready values out
        object.__setattr__(self, "passed", bool(self.passed))
        object.__setattr__(self, "failed_count", int(self.failed_count))
        object.__setattr__(self, "failed_share", float(self.failed_share))
        object.__setattr__(self, "examples", [_plain(x) for x in self.examples])

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, one key per field."""
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """Base of every check. ``severity`` is ``error`` (fails validation) or ``warn``."""

    kind: ClassVar[str] = "check"

    def columns(self) -> list[str]:
        """The columns this check reads; validation refuses a suite naming columns the data does not have."""
        column = getattr(self, "column", None)
        return [column] if column else []

    def params(self) -> dict[str, Any]:
        """The check's settings but ``severity``, as a suite's YAML writes them."""
        return {k: v for k, v in asdict(self).items() if k != "severity"}

    def validate_params(self) -> None:
        """Refuse bad settings (``InvalidArgument``) when the suite is built, before any data is read."""
        severity = getattr(self, "severity", "error")
        if severity not in SEVERITIES:
            raise InvalidArgument.for_field(f"{self.kind} check severity", severity, "'error' or 'warn'")

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray | None]:
        """Run the check on a pyarrow Table: its ``CheckResult`` and, for a check that judges rows one by one,
        the boolean mask of the failing rows (None for a check on the whole column or table)."""
        raise NotImplementedError

    def _result(
        self, table: Any, bad: np.ndarray, values: Any, message: str, column: str | None = None
    ) -> tuple[CheckResult, np.ndarray]:
        n = table.num_rows
        count = int(bad.sum())
        examples: list[Any] = []
        if count:
            idx = np.flatnonzero(bad)[:EXAMPLES]
            examples = [f"row {i}" for i in idx] if values is None else [_plain(values[i]) for i in idx]
        result = CheckResult(
            kind=self.kind,
            column=column if column is not None else getattr(self, "column", None),
            passed=count == 0,
            severity=getattr(self, "severity", "error"),
            failed_count=count,
            failed_share=count / n if n else 0.0,
            examples=examples,
            message=message if count else "ok",
        )
        return result, bad


def _plain(x: Any) -> Any:
    if hasattr(x, "as_py"):
        x = x.as_py()
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x if isinstance(x, (int, float, str, bool)) or x is None else str(x)


def _column(table: Any, name: str) -> Any:
    return table.column(name)


def _numeric(table: Any, name: str, check: str) -> np.ndarray:
    col = _column(table, name)
    if column_kind(col.type) != "numeric":
        raise InvalidArgument(f"{check} check on column {name!r}: expected a numeric column, got {col.type}")
    pa = require_arrow()
    import pyarrow.compute as pc

    floats = pc.cast(col, pa.float64())
    return np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)


@dataclass(frozen=True)
class Columns(Check):
    """The data has these columns (and, with ``strict``, no others)."""

    kind: ClassVar[str] = "columns"
    names: tuple[str, ...] = ()
    strict: bool = False
    severity: str = "error"

    def columns(self) -> list[str]:
        """None: this check is the one that looks for the columns, so missing ones fail it rather than the suite."""
        return []  # checked here, so a missing column is a failed check, not a bad suite

    def evaluate(self, table: Any) -> tuple[CheckResult, None]:
        present = set(table.column_names)
        missing = [c for c in self.names if c not in present]
        extra = [c for c in table.column_names if c not in self.names] if self.strict else []
        ok = not missing and not extra
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected columns: {', '.join(extra)}")
        return CheckResult(self.kind, None, ok, self.severity, len(missing) + len(extra), 0.0, missing + extra,
                           "; ".join(parts) or "ok"), None  # fmt: skip


@dataclass(frozen=True)
class Type(Check):
    """The column has a type of this family (numeric, integer, float, string, bool, datetime, categorical)."""

    kind: ClassVar[str] = "type"
    column: str = ""
    type: str = "numeric"
    severity: str = "error"

    def validate_params(self) -> None:
        super().validate_params()
        if self.type not in TYPE_FAMILIES:
            raise InvalidArgument.for_field(
                f"type check on {self.column!r}: type", self.type, f"one of {', '.join(TYPE_FAMILIES)}"
            )

    def evaluate(self, table: Any) -> tuple[CheckResult, None]:
        pa = require_arrow()
        t = _column(table, self.column).type
        value_type = t.value_type if pa.types.is_dictionary(t) else t
        ok = {
            "numeric": column_kind(t) == "numeric",
            "integer": pa.types.is_integer(value_type),
            "float": pa.types.is_floating(value_type),
            "string": pa.types.is_string(value_type) or pa.types.is_large_string(value_type),
            "bool": pa.types.is_boolean(value_type),
            "datetime": pa.types.is_temporal(value_type),
            "categorical": column_kind(t) == "categorical",
        }[self.type]
        message = "ok" if ok else f"expected {self.type}, got {t}"
        return CheckResult(self.kind, self.column, ok, self.severity, 0 if ok else table.num_rows,
                           0.0 if ok else 1.0, [] if ok else [str(t)], message), None  # fmt: skip


@dataclass(frozen=True)
class NotNull(Check):
    """No missing values (null, or NaN in a float column)."""

    kind: ClassVar[str] = "not_null"
    column: str = ""
    severity: str = "error"

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        bad = _missing_mask(_column(table, self.column))
        return self._result(table, bad, None, "missing values")  # examples: the rows


def _missing_mask(col: Any) -> np.ndarray:
    import pyarrow.compute as pc

    pa = require_arrow()
    mask = pc.is_null(col, nan_is_null=pa.types.is_floating(col.type))
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class MaxMissing(Check):
    """At most ``max_share`` of the values are missing."""

    kind: ClassVar[str] = "max_missing"
    column: str = ""
    max_share: float = 0.0
    severity: str = "error"

    def validate_params(self) -> None:
        super().validate_params()
        if not isinstance(self.max_share, (int, float)) or not 0 <= self.max_share <= 1:
            raise InvalidArgument.for_field(
                f"max_missing check on {self.column!r}: max_share", self.max_share, "a number from 0 to 1"
            )

    def evaluate(self, table: Any) -> tuple[CheckResult, None]:
        missing = int(_missing_mask(_column(table, self.column)).sum())
        share = missing / table.num_rows
        ok = share <= self.max_share
        message = "ok" if ok else f"{share:.2%} missing, more than the {self.max_share:.2%} allowed"
        return CheckResult(self.kind, self.column, ok, self.severity, missing, share, [], message), None


@dataclass(frozen=True)
class Range(Check):
    """Values lie within [min, max] (either bound optional; missing values are not judged here)."""

    kind: ClassVar[str] = "range"
    column: str = ""
    min: float | None = None
    max: float | None = None
    severity: str = "error"

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        values = _numeric(table, self.column, self.kind)
        bad = np.zeros(values.size, dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.min is not None:
                bad |= values < self.min
            if self.max is not None:
                bad |= values > self.max
        return self._result(table, bad, values, f"values outside [{self.min}, {self.max}]")


@dataclass(frozen=True)
class AllowedValues(Check):
    """Every (non-missing) value is one of ``values``."""

    kind: ClassVar[str] = "allowed_values"
    column: str = ""
    values: tuple[Any, ...] = ()
    severity: str = "error"

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        import pyarrow.compute as pc

        pa = require_arrow()
        col = _column(table, self.column)
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        try:
            allowed = pa.array(list(self.values), type=col.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            allowed = pa.array([str(v) for v in self.values])
            col = pc.cast(col, pa.string())
        distinct = pc.unique(col)  # hash pass; usually a handful of values
        if pc.all(pc.is_in(distinct.drop_null(), value_set=allowed)).as_py() in (True, None):
            return self._result(table, np.zeros(table.num_rows, dtype=bool), col, "")  # all allowed: no row mask needed
        inside = pc.is_in(col, value_set=allowed, skip_nulls=True)
        bad = ~np.asarray(pc.fill_null(inside, True).to_numpy(zero_copy_only=False), dtype=bool)
        return self._result(table, bad, col, "values outside the allowed set")


@dataclass(frozen=True)
class Unique(Check):
    """No two rows share a value of ``column`` (a key)."""

    kind: ClassVar[str] = "unique"
    column: str = ""
    severity: str = "error"

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        series = table.column(self.column).to_pandas()
        bad = np.asarray(series.duplicated(keep=False) & series.notna(), dtype=bool)
        return self._result(table, bad, series.to_numpy(), "duplicate values")


@dataclass(frozen=True)
class Regex(Check):
    """Every (non-missing) value matches ``pattern`` in full."""

    kind: ClassVar[str] = "regex"
    column: str = ""
    pattern: str = ".*"
    severity: str = "error"

    def validate_params(self) -> None:
        super().validate_params()
        try:  # the check runs on Arrow's RE2: validate with it, not with Python's re (lookarounds etc. differ)
            import pyarrow as pa
            import pyarrow.compute as pc

            pc.match_substring_regex(pa.array([""]), pattern=f"^(?:{self.pattern})$")
        except (pa.ArrowInvalid, re.error) as exc:
            raise InvalidArgument.for_field(
                f"regex check on {self.column!r}: pattern", self.pattern, f"a valid RE2 regular expression ({exc})"
            ) from None

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        import pyarrow.compute as pc

        pa = require_arrow()
        col = pc.cast(_column(table, self.column), pa.string())
        matched = pc.match_substring_regex(col, pattern=f"^(?:{self.pattern})$")
        bad = ~np.asarray(pc.fill_null(matched, True).to_numpy(zero_copy_only=False), dtype=bool)
        return self._result(table, bad, col, f"values not matching {self.pattern!r}")


@dataclass(frozen=True)
class RowCount(Check):
    """The number of rows lies within [min, max]."""

    kind: ClassVar[str] = "row_count"
    min: int | None = None
    max: int | None = None
    severity: str = "error"

    def evaluate(self, table: Any) -> tuple[CheckResult, None]:
        n = table.num_rows
        ok = (self.min is None or n >= self.min) and (self.max is None or n <= self.max)
        message = "ok" if ok else f"{n:,} rows, expected between {self.min} and {self.max}"
        return CheckResult(self.kind, None, ok, self.severity, 0 if ok else 1, 0.0, [] if ok else [n], message), None


@dataclass(frozen=True)
class Outliers(Check):
    """At most ``max_share`` of the values are outliers: beyond ``threshold`` x IQR from the quartiles
    (``method='iqr'``) or ``threshold`` standard deviations from the mean (``method='zscore'``)."""

    kind: ClassVar[str] = "outliers"
    column: str = ""
    method: str = "iqr"
    threshold: float = 1.5
    max_share: float = 0.01
    severity: str = "warn"

    def validate_params(self) -> None:
        super().validate_params()
        if self.method not in ("iqr", "zscore"):
            raise InvalidArgument.for_field(f"outliers check on {self.column!r}: method", self.method, "'iqr' or 'zscore'")
        if not isinstance(self.threshold, (int, float)) or self.threshold <= 0:
            raise InvalidArgument.for_field(f"outliers check on {self.column!r}: threshold", self.threshold, "a positive number")

    def bounds(self, values: np.ndarray) -> tuple[float, float]:
        """The (low, high) bounds outside which a value is an outlier, from the non-NaN values (infinite when none)."""
        present = values[~np.isnan(values)]
        if present.size == 0:
            return -math.inf, math.inf
        if self.method == "iqr":
            q1, q3 = np.quantile(present, [0.25, 0.75])
            spread = q3 - q1
            return float(q1 - self.threshold * spread), float(q3 + self.threshold * spread)
        mean, std = float(present.mean()), float(present.std())
        return mean - self.threshold * std, mean + self.threshold * std

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        values = _numeric(table, self.column, self.kind)
        lo, hi = self.bounds(values)
        with np.errstate(invalid="ignore"):
            bad = (values < lo) | (values > hi)
        share = bad.sum() / values.size
        result, mask = self._result(table, bad, values, f"outliers outside [{lo:.4g}, {hi:.4g}]")
        ok = share <= self.max_share
        message = "ok" if ok else f"{share:.2%} outliers outside [{lo:.4g}, {hi:.4g}], more than {self.max_share:.2%}"
        return CheckResult(**{**result.to_dict(), "passed": ok, "message": message}), mask


@dataclass(frozen=True)
class Custom(Check):
    """A vectorised check of your own: ``fn(pandas_frame)`` returns a boolean mask of the *valid* rows.

    Register it with ``@keel.data.register_check("name")`` so a YAML suite can name it.
    """

    kind: ClassVar[str] = "custom"
    name: str = ""
    column: str | None = None
    severity: str = "error"
    fn: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def params(self) -> dict[str, Any]:
        """The registered name and the column: the function itself is not written to YAML."""
        return {"name": self.name, "column": self.column}

    def function(self) -> Callable[[Any], Any]:
        """The check's function: ``fn`` if given, else the one registered under ``name`` (``InvalidArgument`` if none)."""
        fn = self.fn or _CUSTOM.get(self.name)
        if fn is None:
            raise InvalidArgument.for_field(
                "custom check name",
                self.name,
                f"a function registered with @register_check (known: {', '.join(sorted(_CUSTOM)) or 'none'})",
            )
        return fn

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        frame = table.to_pandas()
        valid = np.asarray(self.function()(frame), dtype=bool)
        if valid.shape != (table.num_rows,):
            raise InvalidArgument(
                f"custom check {self.name!r} returned {valid.shape}; expected a boolean mask of {table.num_rows} rows"
            )
        values = frame[self.column].to_numpy() if self.column else np.arange(table.num_rows)
        return self._result(table, ~valid, values, f"rows failing {self.name!r}")


@dataclass(frozen=True)
class PII(Check):
    """The column holds no personal data of ``kinds`` (default: every kind but ``name``; names too when the
    column is declared ``free_text``), or no more than ``max_count`` values / ``max_share`` of the rows.

    The result counts the values per kind in its message and shows up to three examples per kind, masked
    (``email: j***@e******.com``): never a raw value. See ``keel.data.pii`` for the detectors.
    """

    kind: ClassVar[str] = "pii"
    column: str = ""
    kinds: tuple[str, ...] = ()
    free_text: bool = False
    max_count: int | None = None
    max_share: float | None = None
    severity: str = "error"

    def validate_params(self) -> None:
        super().validate_params()
        pii.check_kinds(self.kinds, self.free_text, f"pii check on {self.column!r}")
        if self.max_count is not None and (not isinstance(self.max_count, int) or isinstance(self.max_count, bool)
                                           or self.max_count < 0):  # fmt: skip
            raise InvalidArgument.for_field(f"pii check on {self.column!r}: max_count", self.max_count, "an integer >= 0")
        if self.max_share is not None and (not isinstance(self.max_share, (int, float)) or not 0 <= self.max_share <= 1):
            raise InvalidArgument.for_field(f"pii check on {self.column!r}: max_share", self.max_share, "a number from 0 to 1")

    def evaluate(self, table: Any) -> tuple[CheckResult, np.ndarray]:
        findings, rows = pii.scan_column(_column(table, self.column), self.column, kinds=self.kinds, free_text=self.free_text)
        n = table.num_rows
        count = int(rows.sum())
        share = count / n if n else 0.0
        if self.max_count is None and self.max_share is None:
            ok = count == 0
        else:
            ok = (self.max_count is None or count <= self.max_count) and (self.max_share is None or share <= self.max_share)
        found = ", ".join(f"{f.kind} in {f.count:,} values ({f.share:.2%})" for f in findings)
        if ok:
            message = f"ok: within the limits ({found})" if count else "ok"
        else:
            limits = [f"{self.max_count:,} values" if self.max_count is not None else "",
                      f"{self.max_share:.2%}" if self.max_share is not None else ""]  # fmt: skip
            allowed = " / ".join(x for x in limits if x) or "none"
            message = f"personal data: {found}; allowed: {allowed}"
        examples = [f"{f.kind}: {example}" for f in findings for example in f.examples]  # masked by pii.scan_column
        return CheckResult(self.kind, self.column, ok, self.severity, count, share, examples, message), rows


def register_check(name: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register a vectorised check function by name, for ``Custom(name=...)`` and YAML suites."""

    def decorate(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        _CUSTOM[name] = fn
        return fn

    return decorate


CHECKS: dict[str, type[Check]] = {
    cls.kind: cls
    for cls in (Columns, Type, NotNull, MaxMissing, Range, AllowedValues, Unique, Regex, RowCount, Outliers, Custom, PII)
}
