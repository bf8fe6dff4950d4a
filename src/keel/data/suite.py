"""Suites: lists of checks, reviewable and versionable as YAML, and proposed from data.

>>> suite = infer_suite(df, name="orders")          # doctest: +SKIP
>>> suite.save("suites/orders.yaml")                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keel.core.errors import InvalidArgument
from keel.data import pii as pii_scan
from keel.data.checks import (
    CHECKS,
    PII,
    AllowedValues,
    Check,
    Columns,
    Custom,
    MaxMissing,
    NotNull,
    Outliers,
    Range,
    Regex,
    RowCount,
    Type,
    Unique,
)
from keel.data.frames import require_arrow, to_arrow
from keel.data.profiling import compute_profile


@dataclass
class Suite:
    """A named list of checks. Plain Python; ``to_yaml``/``from_yaml`` for review and versioning."""

    checks: list[Check] = field(default_factory=list)
    name: str = "suite"

    def __post_init__(self) -> None:
        for check in self.checks:
            if not isinstance(check, Check):
                raise InvalidArgument.for_field("suite check", check, "a keel.data check (Range, NotNull, ...)")
            check.validate_params()

    def columns(self) -> set[str]:
        """Every column the checks read; ``validate`` refuses data that lacks one of them."""
        return {c for check in self.checks for c in check.columns()}

    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data: ``{"suite": name, "checks": [{"kind": ..., <settings>, "severity": ...}]}``."""
        items = []
        for check in self.checks:
            entry: dict[str, Any] = {"kind": check.kind}
            for key, value in check.params().items():
                if value is not None and value != ():
                    entry[key] = list(value) if isinstance(value, tuple) else value
            entry["severity"] = getattr(check, "severity", "error")
            items.append(entry)
        return {"suite": self.name, "checks": items}

    @classmethod
    def from_dict(cls, data: Any) -> Suite:
        """The suite ``to_dict`` wrote; an unknown check kind or a bad setting raises ``InvalidArgument``."""
        if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
            raise InvalidArgument.for_field("suite", type(data).__name__, "a mapping with a 'checks' list")
        checks: list[Check] = []
        for i, entry in enumerate(data["checks"]):
            if not isinstance(entry, dict) or "kind" not in entry:
                raise InvalidArgument.for_field(f"checks[{i}]", entry, "a mapping with a 'kind'")
            kind = entry["kind"]
            check_cls = CHECKS.get(kind)
            if check_cls is None:
                raise InvalidArgument.for_field(f"checks[{i}].kind", kind, f"one of {', '.join(sorted(CHECKS))}")
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items() if k != "kind"}
            try:
                checks.append(check_cls(**params))
            except TypeError as exc:
                raise InvalidArgument(f"checks[{i}] ({kind}): {exc}") from None
        return cls(checks=checks, name=str(data.get("suite", "suite")))

    def to_yaml(self) -> str:
        """The suite as YAML text, checks in order, for review and version control."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_yaml(cls, text: str) -> Suite:
        """The suite in YAML ``text`` (as ``to_yaml`` writes it); invalid YAML raises ``InvalidArgument``."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"suite is not valid YAML: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the suite as YAML to ``path`` (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        """Read a suite from a YAML file, e.g. ``Suite.load("suites/orders.yaml")``."""
        path = Path(path)
        if not path.is_file():
            raise InvalidArgument.for_field("suite path", str(path), "an existing YAML file")
        return cls.from_yaml(path.read_text())


def _round_out(x: float, up: bool) -> float:
    """Round a bound outward to 3 significant digits, so proposed ranges read well."""
    if x == 0 or not math.isfinite(x):
        return x
    exponent = math.floor(math.log10(abs(x))) - 2
    scaled = math.ceil(x / 10.0**exponent) if up else math.floor(x / 10.0**exponent)
    return round(scaled * 10.0**exponent, max(0, -exponent))


def infer_suite(
    data: Any,
    name: str = "inferred",
    *,
    margin: float = 0.05,
    max_categories: int = 20,
    pii: bool = True,
    free_text: Sequence[str] = (),
) -> Suite:
    """Propose checks from data: columns and types, missing shares, numeric ranges (widened by
    ``margin`` of the span), allowed categories, unique keys, a row-count range (a warning:
    batches come in all sizes) and, with ``pii``, a ``PII`` check (a warning) on each text column where
    personal data was found, naming the kinds found and allowing their share with a margin, so its results
    show counts and masked examples and warn when personal data spreads (person names are searched for in the
    ``free_text`` columns only).

    Review the proposal (``suite.to_yaml()``) before trusting it: it describes this data.
    """
    pa = require_arrow()
    table = to_arrow(data)
    if isinstance(free_text, str):
        free_text = [free_text]
    unknown = [c for c in free_text if c not in table.column_names]
    if unknown:
        raise InvalidArgument(
            f"infer_suite free_text: column {unknown[0]!r} is not in the data; expected one of: {', '.join(table.column_names)}"
        )
    profile = compute_profile(table)
    n = table.num_rows
    # the row count only warns: a later batch is routinely smaller or larger than this sample
    # (a day's orders, a test slice), and refusing it would leave nothing to quarantine
    row_count = RowCount(min=max(1, n // 2), max=n * 2, severity="warn")
    checks: list[Check] = [Columns(names=tuple(table.column_names)), row_count]
    for f in table.schema:
        col = profile["columns"][f.name]
        value_type = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        family = (
            "integer" if pa.types.is_integer(value_type)
            else "float" if pa.types.is_floating(value_type)
            else "bool" if pa.types.is_boolean(value_type)
            else "datetime" if pa.types.is_temporal(value_type)
            else "string" if pa.types.is_string(value_type) or pa.types.is_large_string(value_type)
            else "categorical"
        )  # fmt: skip
        checks.append(Type(column=f.name, type=family))
        if col["missing"] == 0:
            checks.append(NotNull(column=f.name))
        else:
            checks.append(MaxMissing(column=f.name, max_share=round(min(1.0, col["missing_share"] * 1.5 + 0.01), 4)))
        if col["kind"] == "numeric" and "min" in col:
            span = col["max"] - col["min"]
            lo, hi = col["min"] - margin * span, col["max"] + margin * span
            if col["min"] >= 0:
                lo = max(lo, 0.0)  # non-negative data stays non-negative
            if family == "integer":
                lo, hi = math.floor(lo), math.ceil(hi)
            else:
                lo, hi = _round_out(lo, up=False), _round_out(hi, up=True)
            checks.append(Range(column=f.name, min=lo, max=hi))
            if col["distinct"] > max_categories and "quantiles" in col:
                # allow what this data has (skewed columns have a long tail), and a little more
                q1, q3 = col["quantiles"]["p25"], col["quantiles"]["p75"]
                lo_o, hi_o = q1 - 3.0 * (q3 - q1), q3 + 3.0 * (q3 - q1)
                values = table.column(f.name).to_numpy(zero_copy_only=False).astype(float)
                with np.errstate(invalid="ignore"):
                    share = float(np.mean((values < lo_o) | (values > hi_o)))
                checks.append(Outliers(column=f.name, method="iqr", threshold=3.0, max_share=round(max(0.01, share * 1.5), 4)))
        if col["kind"] == "categorical" and col["distinct"] <= max_categories and col["distinct"] < 0.5 * n:
            values = sorted(k for k in col["frequencies"] if k != "__other__")
            if family == "bool":
                values = [v == "true" for v in values]
            checks.append(AllowedValues(column=f.name, values=tuple(values)))
        looks_like_key = f.name.lower() == "id" or f.name.lower().endswith(("_id", "id_", "key"))
        if looks_like_key and col["distinct"] == n and family in ("integer", "string"):
            checks.append(Unique(column=f.name))
        if pii:
            found, rows = pii_scan.scan_column(table.column(f.name), f.name, free_text=f.name in free_text)
            if found:
                # like the other proposals, this data passes it: its results show the counts and masked examples
                # of what is there, and it warns when personal data spreads (a share above this data's, plus a margin)
                share = float(rows.mean())
                checks.append(PII(column=f.name, kinds=tuple(x.kind for x in found), free_text=f.name in free_text,
                                  max_share=round(min(1.0, share * 1.5 + 0.01), 4), severity="warn"))  # fmt: skip
    return Suite(checks=checks, name=name)


__all__ = [
    "PII", "AllowedValues", "Columns", "Custom", "MaxMissing", "NotNull", "Outliers", "Range", "Regex", "RowCount",
    "Suite", "Type", "Unique", "infer_suite",
]  # fmt: skip
