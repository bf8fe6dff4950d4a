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
- Runs and experiments are deleted softly: ``delete_run`` / ``delete_experiment`` hide them (and an experiment's
  runs) from searches and lists unless ``view`` asks for them, ``get_run`` / ``get_experiment`` still answer
  (``deleted_at`` set), every write to a deleted run (or a run of a deleted experiment) raises ``Conflict`` and
  nothing is written, and ``restore_run`` / ``restore_experiment`` bring them back. Only ``keel gc``
  (``keel.store.gc``) removes them for good.
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
from typing import TYPE_CHECKING, Any

from keel.core.entities import (
    ArtifactRef,
    CodeVersion,
    Environment,
    Experiment,
    Metric,
    Run,
    RunKind,
    RunPage,
    RunStatus,
    StepInfo,
    TrialInfo,
    TrialState,
    ViewType,
)
from keel.core.errors import InvalidArgument

if TYPE_CHECKING:  # the entity stores' interfaces, only named here: a first run loads none it does not use
    from keel.store.metadata.audit import AuditStore
    from keel.store.metadata.datasets import DatasetStore
    from keel.store.metadata.deployments import DeploymentStore
    from keel.store.metadata.identity import IdentityStore
    from keel.store.metadata.labels import LabelStore
    from keel.store.metadata.models import ModelStore
    from keel.store.metadata.monitors import MonitorStore
    from keel.store.metadata.pipelines import PipelineStore
    from keel.store.metadata.predictions import PredictionStore
    from keel.store.metadata.privacy import PrivacyStore

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
    def audit(self) -> AuditStore:
        """The hash-chained log of every change, on the same backend (read-only: the store's mutations append)."""

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
    def deployments(self) -> DeploymentStore:
        """Deployments (routes to registered models) and their history, on the same backend."""

    @property
    @abc.abstractmethod
    def identity(self) -> IdentityStore:
        """Principals, their role bindings and API tokens, on the same backend."""

    @property
    @abc.abstractmethod
    def predictions(self) -> PredictionStore:
        """The prediction log's index of files and the labels recorded later, on the same backend."""

    @property
    @abc.abstractmethod
    def monitors(self) -> MonitorStore:
        """Monitors, their window results, alerts, actions and scheduler leases, on the same backend."""

    @property
    @abc.abstractmethod
    def pipelines(self) -> PipelineStore:
        """The pipeline step cache, on the same backend."""

    @property
    @abc.abstractmethod
    def labels(self) -> LabelStore:
        """Label projects, their guidelines, items, task assignment, annotations, reviews and exclusions, on the same
        backend."""

    @property
    @abc.abstractmethod
    def privacy(self) -> PrivacyStore:
        """Privacy budgets of dataset versions and the spends of differentially private runs, on the same backend."""

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
    def list_experiments(self, project: str | None = None, view: ViewType = ViewType.ACTIVE) -> list[Experiment]:
        """The experiments (of ``project``), oldest first; ``view`` says whether live, deleted or all."""

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: int) -> None:
        """Soft-delete an experiment: it and its runs are hidden and read-only until ``restore_experiment``.
        ``Conflict`` when it is deleted already."""

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: int) -> None:
        """Bring a deleted experiment (and so its runs) back. ``Conflict`` when it is not deleted."""

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
        kind: RunKind = RunKind.RUN,
        step: StepInfo | None = None,
        trial: TrialInfo | None = None,
    ) -> Run:
        """Create a ``running`` run (with its first tags and params, in one transaction).

        ``kind`` says what the run is to keel; a step run may carry its ``step`` (name, cache key, the run it
        reuses, which must exist), a trial run its ``trial`` (number, params). See ``check_run_kind``."""

    @abc.abstractmethod
    def set_trial_result(self, run_id: str, state: TrialState, value: float | None = None) -> None:
        """Record how a trial run ended: ``state`` and, when complete, ``value``. ``InvalidArgument`` for a
        run that is not a trial run."""

    @abc.abstractmethod
    def list_child_runs(self, parent_run_id: str, *, status: RunStatus | None = None, kind: RunKind | None = None) -> list[Run]:
        """Every child run of ``parent_run_id`` (oldest first), only those of ``status`` (as runs read: a stale
        ``running`` run is ``killed``) and ``kind`` when given. ``NotFound`` when the parent does not exist."""

    @abc.abstractmethod
    def find_latest_run(self, experiment_id: int, *, kind: RunKind, name: str) -> Run | None:
        """The newest live run of ``kind`` named ``name`` in the experiment (a study by its name), or None."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its params, tags and latest metrics (deleted or not: see ``Run.deleted_at``). Raises ``NotFound``."""

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run and its descendants (a pipeline's steps, a study's trials) not deleted before: hidden
        from searches and read-only until ``restore_run``. ``Conflict`` when it is deleted already."""

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None:
        """Bring back a deleted run and the descendants its deletion hid. ``Conflict`` when it is not deleted, or
        when its experiment is (restore that)."""

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

    def metric_series(self, run_id: str, key: str) -> tuple[Sequence[int], Sequence[float]]:
        """The steps and the values of ``key`` in ``run_id`` as two columns, in ``get_metric_history``'s order: what a
        chart reads (the SQL store answers from its packed blocks, without an object per value)."""
        history = self.get_metric_history(run_id, key)
        return [m.step for m in history], [m.value for m in history]

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
        view: ViewType = ViewType.ACTIVE,
    ) -> RunPage:
        """Search runs (``view``: live ones, the default; ``"deleted"``, or ``"all"``). ``filter`` is a conjunction such as
        ``"metrics.acc > 0.9 and params.model = 'rf' and status = 'finished'"``;
        ``order_by`` items such as ``"metrics.acc DESC"``, ``"start_time"``.
        See ``keel.store.metadata.search`` for the grammar.
        """

    def close(self) -> None:
        """Release connections."""


_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
MAX_STEP_NAME_LENGTH = 128


def check_run_kind(
    kind: Any, step: StepInfo | None, trial: TrialInfo | None
) -> tuple[RunKind, StepInfo | None, TrialInfo | None]:
    """Backend-neutral checks of a run's kind and what it carries: a ``step`` only on a step run, a ``trial``
    only on a trial run (its params a JSON object); a trial's state and value are set when it ends."""
    try:
        kind = RunKind(kind)
    except ValueError:
        raise InvalidArgument.for_field("kind", kind, f"one of {', '.join(k.value for k in RunKind)}") from None
    if step is not None:
        if kind is not RunKind.STEP or not isinstance(step, StepInfo):
            raise InvalidArgument.for_field("step", step, "step information on a run of kind 'step' only")
        if not isinstance(step.name, str) or not 0 < len(step.name) <= MAX_STEP_NAME_LENGTH:
            raise InvalidArgument.for_field("step name", step.name, f"a name of 1 to {MAX_STEP_NAME_LENGTH} characters")
        if not isinstance(step.cache_key, str) or not _HEX64.fullmatch(step.cache_key):
            raise InvalidArgument.for_field("cache key", step.cache_key, "a sha256 hex digest")
        if step.cached_from is not None and (not isinstance(step.cached_from, str) or not _HEX32.fullmatch(step.cached_from)):
            raise InvalidArgument.for_field("cached_from", step.cached_from, "a run id")
    if trial is not None:
        if kind is not RunKind.TRIAL or not isinstance(trial, TrialInfo):
            raise InvalidArgument.for_field("trial", trial, "trial information on a run of kind 'trial' only")
        if isinstance(trial.number, bool) or not isinstance(trial.number, int) or trial.number < 0:
            raise InvalidArgument.for_field("trial number", trial.number, "a non-negative integer")
        if not isinstance(trial.params, Mapping) or not all(isinstance(k, str) for k in trial.params):
            raise InvalidArgument.for_field("trial params", trial.params, "a mapping of names to values")
        if trial.state is not None or trial.value is not None:
            raise InvalidArgument.for_field("trial", trial, "no state or value yet (set_trial_result records them)")
    return kind, step, trial


def check_trial_result(state: Any, value: Any) -> tuple[TrialState, float | None]:
    try:
        state = TrialState(state)
    except ValueError:
        raise InvalidArgument.for_field("trial state", state, f"one of {', '.join(s.value for s in TrialState)}") from None
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument.for_field("trial value", value, "a number")
        if state is not TrialState.COMPLETE:
            raise InvalidArgument.for_field("trial value", value, "no value unless the trial is complete")
        value = float(value)
    return state, value


TrackingStore = MetadataStore
"""The former name of ``MetadataStore`` (it owns more than tracking), kept while callers move over."""
