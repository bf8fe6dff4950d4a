"""Layer 2: versioned datasets, profiles, validation of external data, drift, reusable transforms.

Needs the ``data`` extra (pyarrow, numpy, pandas, scipy, pyyaml): ``pip install 'keel[data]'``.

>>> import keel.data
>>> v = keel.data.log(df, "orders", suite=keel.data.infer_suite(df))   # doctest: +SKIP
>>> report = keel.data.drift("orders@1", new_df)                        # doctest: +SKIP
"""

from __future__ import annotations

from keel.core.datasets import parse_ref
from keel.data.checks import (
    PII,
    AllowedValues,
    Check,
    CheckResult,
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
    register_check,
)
from keel.data.dataset_versions import (
    ValidationFailed,
    datasets,
    get,
    lineage,
    log,
    profile,
    resolve,
    save_validation,
    versions,
)
from keel.data.drift_detection import ColumnDrift, DriftResult, drift
from keel.data.pii import PIIFinding, find_pii
from keel.data.suite import Suite, infer_suite
from keel.data.transforms import apply, get_transform, registered, transform
from keel.data.validation import ValidationResult, validate

__all__ = [
    "PII", "AllowedValues", "Check", "CheckResult", "ColumnDrift", "Columns", "Custom", "DriftResult", "MaxMissing",
    "NotNull", "Outliers", "PIIFinding", "Range", "Regex", "RowCount", "Suite", "Type", "Unique", "ValidationFailed",
    "ValidationResult", "apply", "datasets", "drift", "find_pii", "get", "get_transform", "infer_suite", "lineage",
    "log", "parse_ref", "profile", "register_check", "registered", "resolve", "save_validation", "transform",
    "validate", "versions",
]  # fmt: skip
