"""Entities of the metadata store as frozen dataclasses.

They are separate from ORM rows (``keel.store.metadata.sql.schema``) and from wire
schemas (``keel.server``): stores convert at their edges.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RunStatus(enum.StrEnum):
    """A run's state: ``running`` until it ends as ``finished``, ``failed`` (an exception) or ``killed`` (Ctrl-C)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def is_terminal(self) -> bool:
        """True for an ended run (any status but ``running``)."""
        return self is not RunStatus.RUNNING


class RunKind(enum.StrEnum):
    """What a run is to keel: a run of the user's, or one of the runs pipelines and tune record."""

    RUN = "run"
    PIPELINE = "pipeline"
    STEP = "step"  # a child of a pipeline run
    STUDY = "study"
    SWEEP = "sweep"
    TRIAL = "trial"  # a child of a study or sweep run


NOTE_TAG = "keel.note"
"""The tag that holds a run's description (``keel.set_description``), as MLflow keeps ``mlflow.note.content``."""


class ViewType(enum.StrEnum):
    """Which runs or experiments a search or list shows: the live ones (the default), only the deleted, or all."""

    ACTIVE = "active"
    DELETED = "deleted"
    ALL = "all"


class TrialState(enum.StrEnum):
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StepInfo:
    """A step run's step: its name and cache key; ``cached_from`` is the run whose output it reused (cached steps)."""

    name: str
    cache_key: str
    cached_from: str | None = None


@dataclass(frozen=True, slots=True)
class TrialInfo:
    """A trial run's number, the params it was asked, and once told its state and value."""

    number: int
    params: dict[str, Any] = field(default_factory=dict)
    state: TrialState | None = None  # None while it runs
    value: float | None = None  # the objective's value when complete (NaN as it was)


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs within a project; ``deleted_at`` is set while it is soft-deleted."""

    id: int
    name: str
    project: str = "default"
    created_at: int = 0  # ms since the epoch
    deleted_at: int | None = None  # ms since the epoch when soft-deleted (restorable until ``keel gc``)

    @property
    def deleted(self) -> bool:
        """True while the experiment is soft-deleted (``keel.restore_experiment`` brings it back)."""
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """Where the code of a run came from: git commit, a hash of uncommitted changes, entry point."""

    git_commit: str | None = None
    git_dirty_hash: str | None = None  # sha256 of `git diff HEAD`; None when clean
    entry_point: str | None = None
    entry_point_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """The interpreter a run ran in; ``packages_blob`` is the artifact holding the package list."""

    python_version: str | None = None
    platform: str | None = None
    packages_hash: str | None = None
    packages_blob: str | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """One logged value of a metric: its run, key, value, step and timestamp (ms since the epoch)."""

    run_id: str
    key: str
    value: float
    step: int = 0
    timestamp: int = 0  # ms since the epoch


@dataclass(frozen=True, slots=True)
class LatestMetric:
    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """An artifact of a run: a name within the run and the sha256 of its content."""

    path: str
    sha256: str
    size: int
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Run:
    """A run as stored: status, times (ms since the epoch), params, tags, the latest value of each metric
    (``metrics``; ``get_metric_history`` has them all), code version and environment."""

    id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    heartbeat: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, LatestMetric] = field(default_factory=dict)
    code: CodeVersion = field(default_factory=CodeVersion)
    environment: Environment = field(default_factory=Environment)
    kind: RunKind = RunKind.RUN
    step: StepInfo | None = None  # step runs
    trial: TrialInfo | None = None  # trial runs
    # when the run was soft-deleted, or else when its experiment was (ms since the epoch); None while live
    deleted_at: int | None = None

    @property
    def deleted(self) -> bool:
        """True while the run, or its experiment, is soft-deleted (hidden from searches, read-only)."""
        return self.deleted_at is not None

    @property
    def description(self) -> str | None:
        """The run's description (its notes), kept in the tag ``keel.note``; None when it has none."""
        return self.tags.get(NOTE_TAG)

    @property
    def duration_ms(self) -> int | None:
        """How long the run ran, in milliseconds; None while it has not ended."""
        return None if self.end_time is None else self.end_time - self.start_time

    def metric(self, key: str) -> float | None:
        """The latest value of the metric ``key``, or None when the run never logged it."""
        latest = self.metrics.get(key)
        return None if latest is None else latest.value


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a run search; pass ``next_page_token`` back for the next one."""

    runs: list[Run]
    next_page_token: str | None = None


def to_plain(obj: Any) -> Any:
    """Turn entities into JSON-friendly dicts (for the CLI's --json and tests)."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if hasattr(obj, "__dataclass_fields__"):
        return {name: to_plain(getattr(obj, name)) for name in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
