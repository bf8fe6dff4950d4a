"""The prediction store interface: the index of prediction-log files and the labels that arrive later.

Contract (checked by ``keel.testing.prediction_contract`` on SQLite, PostgreSQL and REST): one transaction per
call; bad input writes nothing; raises only ``keel.core.errors`` types. Both writes are idempotent, so a replica
or a client may resend what it is not sure was stored: a log file is keyed by ``(deployment, sha256)`` (the same
file again is stored once), a label by ``(deployment, request_id, row)`` (sent again, it replaces the earlier
value). The deployment must exist (``NotFound`` otherwise).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from keel.core.predictions import MAX_LABELS_PER_CALL, PredictionLabel, PredictionLogFile

__all__ = ["MAX_LABELS_PER_CALL", "PredictionStore"]


class PredictionStore(abc.ABC):
    @abc.abstractmethod
    def add_log_file(self, file: PredictionLogFile) -> PredictionLogFile:
        """Index one written Parquet blob (``created_at`` set by the store); the same ``(deployment, sha256)``
        again returns the stored entry and writes nothing."""

    @abc.abstractmethod
    def log_files(self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None) -> list[PredictionLogFile]:
        """The files whose span overlaps ``[since_ms, until_ms]`` (either end open when None), oldest first."""

    @abc.abstractmethod
    def log_labels(self, deployment: str, labels: Sequence[tuple[str, int, object]]) -> int:
        """Record ``(request_id, row, label)`` triples (at most ``MAX_LABELS_PER_CALL``; labels are JSON values);
        returns how many were given. All or nothing."""

    @abc.abstractmethod
    def labels(
        self, deployment: str, *, request_ids: Sequence[str] | None = None, since_ms: int | None = None
    ) -> list[PredictionLabel]:
        """The labels of ``request_ids`` (all when None) recorded at or after ``since_ms``, by request id and row."""
