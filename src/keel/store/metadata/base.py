"""The metadata store interface: the one seam between keel's services and its metadata backends.

Contract (every backend, checked by ``keel.testing.store_contract`` on SQLite,
PostgreSQL and REST):

- Thread safe: one instance may be shared by threads.
- Every method is one transaction: it either writes everything or nothing.
- Returned entities are immutable snapshots (frozen dataclasses).
- Raises only ``keel.core.errors`` types: ``InvalidArgument`` for bad input (nothing
  written), ``NotFound`` for a missing run or experiment, ``Conflict`` for a write
  that contradicts stored state (a param re-logged with another value),
  ``StoreUnavailable`` when the backend cannot be reached.
- Validates everything it is given, whoever calls it: a server never trusts its clients.
- A run that is ``running`` but whose heartbeat is older than ``heartbeat_timeout``
  reads as ``killed`` (in ``get_run`` and in searches).
- Metric writes are idempotent by batch id: ``log_metrics`` and ``end_run`` given a
  ``batch_id`` already applied (within ``BATCH_ID_RETENTION_MS``) store nothing and
  succeed, so a client may resend a request whose answer it never got (a timeout after
  the server committed). The id is recorded in the same transaction as the values.
"""

from __future__ import annotations

import abc
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from keel.core.entities import (
    ArtifactRef,
    CodeVersion,
    Environment,
    Experiment,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from keel.core.errors import InvalidArgument
from keel.store.metadata.datasets import DatasetStore
from keel.store.metadata.models import ModelStore
from keel.store.metadata.pipelines import PipelineStore

MetricRow = tuple[str, str, float, int, int]
"""A metric as it travels in batches: (run_id, key, value, step, timestamp_ms)."""

BATCH_ID_RETENTION_MS = 24 * 3600 * 1000
"""How long a store remembers applied batch ids: a resend later than this is stored again."""
_BATCH_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def new_batch_id() -> str:
    """A fresh id for one metric batch; resends of that batch carry the same id."""
    return uuid.uuid4().hex


def check_batch_id(batch_id: Any) -> str:
    """A batch id: 1 to 100 letters, digits, '.', '_', ':' or '-'."""
    if not isinstance(batch_id, str) or _BATCH_ID.fullmatch(batch_id) is None:
        raise InvalidArgument.for_field("batch_id", batch_id, "1 to 100 letters, digits, '.', '_', ':' or '-'")
    return batch_id


class MetadataStore(abc.ABC):
    """Experiments, runs, params, tags, metrics and artifact references; datasets, models and the
    step cache through ``datasets``, ``models`` and ``pipelines``, on the same backend."""

    heartbeat_timeout: float = 30.0

    @property
    @abc.abstractmethod
    def datasets(self) -> DatasetStore:
        """Dataset versions, lineage and validation records, on the same backend."""

    @property
    @abc.abstractmethod
    def models(self) -> ModelStore:
        """The model registry, on the same backend."""

    @property
    @abc.abstractmethod
    def pipelines(self) -> PipelineStore:
        """The pipeline step cache, on the same backend."""

    # experiments -----------------------------------------------------------------
    @abc.abstractmethod
    def get_or_create_experiment(self, name: str, project: str = "default") -> Experiment:
        """Return the experiment ``name`` of ``project``, creating both if needed (idempotent)."""

    @abc.abstractmethod
    def get_experiment(self, experiment_id: int) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str, project: str = "default") -> Experiment:
        """Raises ``NotFound`` when there is no such experiment."""

    @abc.abstractmethod
    def list_experiments(self, project: str | None = None) -> list[Experiment]: ...

    # runs ------------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        *,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        code: CodeVersion | None = None,
        environment: Environment | None = None,
        start_time: int | None = None,
    ) -> Run:
        """Create a ``running`` run (with its first tags and params, in one transaction)."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its params, tags and latest metrics. Raises ``NotFound``."""

    @abc.abstractmethod
    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[MetricRow] = (),
        batch_id: str | None = None,
    ) -> None:
        """Set a terminal status, first storing ``metrics`` (the last buffered values) in the same
        transaction. Ending an ended run raises ``Conflict`` and stores nothing, unless ``batch_id``
        names a write already applied: then this is a resend of that very call, and a no-op."""

    @abc.abstractmethod
    def heartbeat(self, run_ids: Sequence[str], time_ms: int | None = None) -> None:
        """Record that these runs are alive (ended runs are left alone)."""

    @abc.abstractmethod
    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log params. Re-logging the same value is a no-op; another value raises ``Conflict``."""

    @abc.abstractmethod
    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags (overwrites)."""

    @abc.abstractmethod
    def log_metrics(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        """Append metric values, possibly of several runs, in one transaction.

        Values may be NaN or infinite and are stored faithfully. With ``batch_id``, a batch
        already applied is not stored again (see the module docstring).
        """

    def metric_batch_applied(self, batch_id: str) -> bool:
        """Whether a write with this batch id was applied (a cheap check before parsing a resend)."""
        return False

    @abc.abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of ``key`` in ``run_id``, ordered by step then timestamp."""

    @abc.abstractmethod
    def log_artifacts(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        """Record artifacts of a run (the blobs are in the artifact store). Same path again overwrites."""

    @abc.abstractmethod
    def list_artifacts(self, run_id: str) -> list[ArtifactRef]: ...

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """Search runs. ``filter`` is a conjunction such as
        ``"metrics.acc > 0.9 and params.model = 'rf' and status = 'finished'"``;
        ``order_by`` items such as ``"metrics.acc DESC"``, ``"start_time"``.
        See ``keel.store.metadata.search`` for the grammar.
        """

    def close(self) -> None:
        """Release connections."""


TrackingStore = MetadataStore
"""The former name of ``MetadataStore`` (it owns more than tracking), kept while callers move over."""
