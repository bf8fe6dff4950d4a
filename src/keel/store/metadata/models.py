"""The model store interface: registered models, immutable versions, aliases and their history.

Contract (checked by ``keel.testing.model_contract`` on SQLite, PostgreSQL and REST): one
transaction per call; versions never change once created; an alias moves only through
``move_alias`` (gates checked by the store, compare-and-swap on the holder, or an explicit
``force``), and every move (set, move, delete) appends to the alias history with who, when,
from, to, why, whether it was gated or forced and the checks; raises only ``keel.core.errors`` types.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from keel.core.model_records import check_version_metrics
from keel.core.models import AliasChange, Assessment, ModelVersion
from keel.core.promotion import ANY_HOLDER, ExpectedFrom

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
    def move_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        rules: Sequence[str] = (),
        require_valid_data: bool = False,
        expected_from: ExpectedFrom = ANY_HOLDER,
        force: bool = False,
        actor: str,
        reason: str = "",
    ) -> AliasChange:
        """Point ``alias`` at ``version`` through its gates, in one transaction, and record the move.

        In that transaction: the alias's current holder is read (the baseline); ``Conflict`` when it is not
        ``expected_from`` (compare-and-swap; ``"any"`` skips the comparison, ``None`` expects no holder);
        ``rules`` are checked on the version's metrics snapshot against the holder's (``keel.core.rules``;
        a baseline rule with no holder is ``InvalidArgument``), ``require_valid_data`` wants the latest
        validation of each training dataset to have passed; a failure is ``PromotionRefused`` with the
        checks, and nothing is written. A move with no gate (and every removal, ``version=None``) must say
        ``force=True``, else ``InvalidArgument``; it is recorded as forced. Checks in ``keel.core.promotion``.
        """

    @abc.abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every move of the model's aliases (or of one alias), oldest first."""

    @abc.abstractmethod
    def add_assessment(self, assessment: Assessment) -> Assessment:
        """Record an assessment of an existing version (``id``, ``created_at``, ``created_by`` set by the store; the
        version's own metrics never change). ``NotFound`` for an unknown version, ``InvalidArgument`` for a bad kind
        or metric. Promotion gates (``move_alias``) then see its metrics as ``<kind>.<name>`` (the latest assessment
        of each kind). Audited."""

    @abc.abstractmethod
    def assessments(self, name: str, version: int, kind: str | None = None) -> list[Assessment]:
        """The version's assessments, oldest first; only ``kind``'s."""
