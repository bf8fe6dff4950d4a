"""The model store interface: registered models, immutable versions, aliases and their history.

Contract (checked by ``keel.testing.model_contract`` on SQLite, PostgreSQL and REST): one
transaction per call; versions never change once created; every alias move (set, move,
delete) appends to the alias history with who, when, from, to and why; raises only
``keel.core.errors`` types.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from keel.core.model_records import check_version_metrics
from keel.core.models import AliasChange, ModelVersion

__all__ = ["ModelStore", "check_version_metrics"]  # check_version_metrics lives in keel.core (every backend uses it)


class ModelStore(abc.ABC):
    @abc.abstractmethod
    def create_version(
        self,
        name: str,
        *,
        flavor: str,
        artifact_sha256: str,
        size: int,
        signature: Mapping[str, Any],
        source_run: str | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Sequence[str] = (),
        requirements: Sequence[str] = (),
        description: str = "",
    ) -> ModelVersion:
        """Register the next version of ``name`` (creating the model on first use)."""

    @abc.abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion: ...

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]: ...

    @abc.abstractmethod
    def list_models(self) -> list[ModelVersion]:
        """The latest version of every model."""

    @abc.abstractmethod
    def resolve_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points to now. Raises ``NotFound``."""

    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: int | None, *, actor: str, reason: str) -> AliasChange:
        """Point ``alias`` at ``version`` (``None`` removes it) and record the move."""

    @abc.abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every move of the model's aliases (or of one alias), oldest first."""
