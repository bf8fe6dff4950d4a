"""Model registry entities: immutable versions, aliases, and the history of alias moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelVersion:
    id: int
    name: str
    version: int
    flavor: str
    artifact_sha256: str
    size: int
    signature: dict[str, Any] = field(default_factory=dict)
    source_run: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    description: str = ""
    created_at: int = 0
    aliases: tuple[str, ...] = ()
    # the training dataset versions by key (``model_version_datasets``): what ``datasets`` names and exists
    dataset_version_ids: tuple[int, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class AliasChange:
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    at: int
    gated: bool = False  # the move passed gates checked by the store, in the transaction that moved the alias
    forced: bool = False  # the caller explicitly skipped the gates (force=True)
    checks: list[dict[str, Any]] | None = None  # the gates checked, with their values (JSON), when gated


@dataclass(frozen=True, slots=True)
class Assessment:
    """An assessment of a model version made after it was registered (``kind``: ``fairness``, ...): its numbers
    (``metrics``, flat names such as ``demographic_parity_difference``), the details behind them (``details``, JSON:
    per-group tables, the sensitive features, the data), the report's blob and the run that made it. Promotion gates
    read a version's registered metrics and, under ``<kind>.<name>``, the latest assessment of each kind."""

    model: str
    version: int
    kind: str
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    artifact_sha256: str | None = None
    run_id: str | None = None
    created_at: int = 0
    created_by: str = ""
    id: int = 0
