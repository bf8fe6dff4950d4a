"""Checks of a model version's assessments (``keel.core.models.Assessment``), the same on every backend (what gates
read of them: ``keel.core.model_records.assessed_metrics``).

An assessment's kind names a family (``fairness``, ``robustness``, ...): lower-case, no dot, so that the name a gate
reads, ``<kind>.<metric>``, splits one way only. Metric names are what a rule can name (``keel.core.rules``: no
spaces); their values finite numbers (an assessment measured something; NaN would pass or fail a gate by accident).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.models import Assessment
from keel.core.validation import check_sha256

__all__ = ["MAX_DETAILS_BYTES", "MAX_METRICS", "check_assessment", "check_kind"]

MAX_METRICS = 1_000
MAX_DETAILS_BYTES = 8 << 20  # per-group tables of many groups, not the data
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_METRIC = re.compile(r"[A-Za-z0-9_\-./:]{1,200}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise InvalidArgument.for_field("kind", kind, "1-32 lower-case letters, digits, '_' or '-', starting with a letter")
    return kind


def _metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise InvalidArgument.for_field("metrics", metrics, "a mapping of metric names to numbers")
    if len(metrics) > MAX_METRICS:
        raise InvalidArgument.for_field("metrics", len(metrics), f"at most {MAX_METRICS} metrics")
    checked: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _METRIC.fullmatch(name):
            raise InvalidArgument.for_field("metric name", name, "1-200 letters, digits, '_', '-', '.', '/' or ':'")
        if isinstance(value, bool) or isinstance(value, str | bytes):
            raise InvalidArgument.for_field(f"metric {name!r} value", value, "a finite number")
        try:
            number = float(value)  # numpy scalars too
        except (TypeError, ValueError):
            raise InvalidArgument.for_field(f"metric {name!r} value", value, "a finite number") from None
        if not math.isfinite(number):
            raise InvalidArgument.for_field(f"metric {name!r} value", value, "a finite number")
        checked[name] = number
    return checked


def _details(details: Any) -> dict[str, Any]:
    if not isinstance(details, Mapping):
        raise InvalidArgument.for_field("details", details, "a JSON object")
    try:
        text = json.dumps(dict(details), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise InvalidArgument.for_field("details", "...", "JSON data (text, finite numbers, lists, objects)") from None
    if len(text) > MAX_DETAILS_BYTES:
        raise InvalidArgument.for_field("details", f"{len(text):,} bytes of JSON", f"at most {MAX_DETAILS_BYTES:,} bytes")
    return json.loads(text)  # type: ignore[no-any-return]  # plain JSON: tuples as lists, keys as text


def check_assessment(assessment: Any) -> Assessment:
    """``assessment`` with every field checked and normalised (metrics as floats, details as plain JSON); the fields
    the store sets (``id``, ``created_at``, ``created_by``) are left for it to overwrite."""
    if not isinstance(assessment, Assessment):
        raise InvalidArgument.for_field("assessment", assessment, "an Assessment")
    if not isinstance(assessment.model, str) or not assessment.model:
        raise InvalidArgument.for_field("model", assessment.model, "a model name")
    version = assessment.version
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 2**31 - 1:
        raise InvalidArgument.for_field("version", version, "a positive integer")
    sha = assessment.artifact_sha256
    run_id = assessment.run_id
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id)):
        raise InvalidArgument.for_field("run_id", run_id, "a run id (32 hex digits)")
    return replace(
        assessment,
        kind=check_kind(assessment.kind),
        metrics=_metrics(assessment.metrics),
        details=_details(assessment.details),
        artifact_sha256=None if sha is None else check_sha256(sha),
    )
