"""Dataset entities: versions of a named dataset, their schema, lineage and validation records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import InvalidArgument
from keel.core.validation import NAME_PATTERN

_REF = re.compile(rf"^(?P<name>{NAME_PATTERN})(?:@(?P<version>\d+|latest))?\Z")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"orders"`` -> ("orders", None) (latest); ``"orders@3"`` -> ("orders", 3). Used by ``keel.data`` and by
    the registry (a model version's training datasets), so it lives below both."""
    m = _REF.match(ref) if isinstance(ref, str) else None
    if not m:
        raise InvalidArgument.for_field("dataset reference", ref, "'name' or 'name@version', e.g. 'orders@3'")
    version = m.group("version")
    return m.group("name"), None if version in (None, "latest") else int(version)


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    name: str
    type: str  # Arrow type name: int64, double, string, bool, timestamp[us], dictionary<...>, ...
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a dataset, stored as canonical Parquet under ``artifact_sha256``.

    ``content_hash`` identifies the data (logging identical content again returns this
    version); ``parents`` are the versions it was derived from, as ``name@version`` refs.
    """

    id: int
    name: str
    version: int
    content_hash: str
    artifact_sha256: str
    size: int
    row_count: int
    schema: tuple[ColumnSchema, ...]
    source: str = ""
    role: str = "data"  # "data", or "quarantine" for rows split off by a failed validation
    transform: dict[str, Any] | None = None
    parents: tuple[str, ...] = ()
    created_at: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.schema]


@dataclass(frozen=True, slots=True)
class RunDatasetLink:
    run_id: str
    version: DatasetVersion
    direction: str  # "input" or "output"


@dataclass(frozen=True, slots=True)
class ValidationRecord:
    id: int
    version_id: int
    suite: str
    passed: bool
    errors: int
    warnings: int
    result: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0
