"""The dataset store interface: versions, lineage, run links, profiles and validation records.

Contract (checked by ``keel.testing.dataset_contract`` on SQLite, PostgreSQL and REST):
thread safe; one transaction per call; versions are immutable; ``log_version`` is
idempotent on (name, content_hash); raises only ``keel.core.errors`` types
(``InvalidArgument``, ``NotFound``, ``Conflict``). The blobs themselves live in the
artifact store; this store holds their hashes.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from keel.core.datasets import ColumnSchema, DatasetVersion, RunDatasetLink, ValidationRecord

DIRECTIONS = ("input", "output")


class DatasetStore(abc.ABC):
    @abc.abstractmethod
    def log_version(
        self,
        name: str,
        *,
        content_hash: str,
        artifact_sha256: str,
        size: int,
        row_count: int,
        schema: Sequence[ColumnSchema],
        source: str = "",
        role: str = "data",
        parent_ids: Sequence[int] = (),
        transform: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Record a version (next number for ``name``); with known content, return the existing
        version instead. Returns ``(version, created)``."""

    @abc.abstractmethod
    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version of ``name`` (the latest when ``version`` is None). Raises ``NotFound``."""

    @abc.abstractmethod
    def get_version_by_id(self, version_id: int) -> DatasetVersion: ...

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first. Raises ``NotFound`` for an unknown dataset."""

    @abc.abstractmethod
    def list_datasets(self) -> list[DatasetVersion]:
        """The latest version of every dataset, by name."""

    @abc.abstractmethod
    def get_profile(self, version_id: int) -> dict[str, Any] | None:
        """The profile computed when the version was logged."""

    @abc.abstractmethod
    def children(self, version_id: int) -> list[DatasetVersion]:
        """Versions derived from this one."""

    @abc.abstractmethod
    def link_run(self, run_id: str, version_id: int, direction: str) -> None:
        """Record that a run read (``input``) or wrote (``output``) a version (idempotent)."""

    @abc.abstractmethod
    def runs_of_version(self, version_id: int) -> list[tuple[str, str]]:
        """(run_id, direction) of every run that used the version."""

    @abc.abstractmethod
    def versions_of_run(self, run_id: str) -> list[RunDatasetLink]: ...

    @abc.abstractmethod
    def save_validation(
        self, version_id: int, suite: str, passed: bool, errors: int, warnings: int, result: Mapping[str, Any]
    ) -> ValidationRecord: ...

    @abc.abstractmethod
    def list_validations(self, version_id: int) -> list[ValidationRecord]:
        """Validation records of a version, newest first."""
