"""What a model version may record, checked the same way by every backend (a server never trusts its clients).

Stores call ``check_model_version`` before they write; what it returns is plain data that any
backend can store (the SQL backend keeps the JSON fields as text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from keel.core import validation as v
from keel.core.errors import InvalidArgument

_REQUIREMENT = re.compile(r"[A-Za-z0-9][^\x00-\x1f\x7f]{0,499}")


@dataclass(frozen=True, slots=True)
class CheckedModelVersion:
    """The validated fields of a version about to be registered (JSON fields as compact JSON text)."""

    flavor: str
    artifact_sha256: str
    size: int
    signature: str
    metrics: str
    datasets: str
    requirements: str
    source_run: str | None
    description: str


def check_version_metrics(metrics: Any) -> dict[str, float]:
    """A version's metrics: metric keys to real numbers (NaN and infinities kept, as for run metrics)."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidArgument.for_field("metrics", metrics, "a mapping of metric names to numbers")
    checked = {}
    for key, value in metrics.items():
        v.check_key(key, "metric key")
        if isinstance(value, (str, bytes)):  # float("1e3") would pass: a metric is a number, not text
            raise InvalidArgument.for_field(f"metric {key!r} value", value, "a number")
        checked[key] = v.check_metric_value(value, key)
    return checked


def json_field(field: str, value: Any, kind: type, expected: str, item: type | None = None) -> str:
    """``value`` as JSON text, or ``InvalidArgument`` naming the field (never a raw ``TypeError``/``ValueError``)."""
    if not isinstance(value, kind) or isinstance(value, (str, bytes)):
        raise InvalidArgument.for_field(field, value, expected)
    data: Any = dict(value) if isinstance(value, Mapping) else list(cast(Sequence[Any], value))
    if item is not None and not all(isinstance(x, item) for x in data):
        raise InvalidArgument.for_field(field, value, expected)
    try:
        return json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgument.for_field(field, value, f"{expected} of JSON values (strings, finite numbers, ...)") from None


def check_model_version(
    name: Any,
    *,
    flavor: Any,
    artifact_sha256: Any,
    size: Any,
    signature: Any,
    source_run: Any = None,
    metrics: Any = None,
    datasets: Any = (),
    requirements: Any = (),
    description: Any = "",
) -> CheckedModelVersion:
    """Every argument of ``ModelStore.create_version``, checked (``InvalidArgument`` names the first bad one)."""
    v.check_name(name, "model name")
    v.check_sha256(artifact_sha256)
    if not isinstance(flavor, str) or not flavor:
        raise InvalidArgument.for_field("flavor", flavor, "a flavor name")
    v.check_count(size, "size")
    return CheckedModelVersion(
        flavor=flavor,
        artifact_sha256=artifact_sha256,
        size=size,
        signature=json_field("signature", signature, Mapping, "a JSON object"),
        metrics=json.dumps(check_version_metrics(metrics)),
        datasets=json_field("datasets", datasets, Sequence, "a list of strings", str),
        requirements=json_field("requirements", check_requirements(requirements), Sequence, "a list of strings", str),
        source_run=source_run,
        description=description or "",
    )


def check_requirements(requirements: Any) -> Any:
    """Requirement lines as pip reads them (``scikit-learn==1.8.0``): a package name first, one line, printable.
    They end up in files other tools run (``keel deploy package`` writes them into a Dockerfile): a newline in one
    would be a Dockerfile instruction of its own."""
    if isinstance(requirements, Sequence) and not isinstance(requirements, (str, bytes)):
        for item in requirements:
            if isinstance(item, str) and _REQUIREMENT.fullmatch(item) is None:
                raise InvalidArgument.for_field("requirements", item, "one pip requirement per item, e.g. 'scikit-learn==1.8.0'")
    return requirements


ASSESSED_KINDS: tuple[str, ...] = ("fairness",)  # the kinds keel's own assessments write (keel.fairness.assess)


def assessed_metrics(metrics: Mapping[str, float], assessments: Sequence[Any]) -> dict[str, float]:
    """What gates read of a model version: its registered ``metrics`` and, as ``<kind>.<name>``, the metrics of its
    latest assessment of each kind (``assessments`` oldest first, ``keel.core.models.Assessment``); a later
    assessment of a kind replaces the earlier one's numbers entirely."""
    latest: dict[str, Any] = {}
    for a in assessments:
        latest[a.kind] = a
    # a registered metric named like an assessment's (``fairness.x`` snapshotted from a run) never stands in for one:
    # a gate on ``fairness.x`` reads an assessment or finds nothing
    kinds = {*ASSESSED_KINDS, *latest}
    out = {k: v for k, v in metrics.items() if k.split(".", 1)[0] not in kinds}
    for kind, a in latest.items():
        out.update({f"{kind}.{name}": float(value) for name, value in a.metrics.items()})
    return out


__all__ = [
    "ASSESSED_KINDS", "CheckedModelVersion", "assessed_metrics", "check_model_version", "check_requirements",
    "check_version_metrics", "json_field",
]  # fmt: skip
