"""``SqlStore``: the metadata store on SQLite or PostgreSQL (SQLAlchemy Core).

The root object that ``open_store`` returns. It owns one ``Database`` (the unit of work:
engine, transactions, retry, error translation; ``database.py``) and one store per entity,
each using only the database's public API:

- ``experiments.py``: projects and experiments
- ``runs.py``: runs, params, tags (``run_search.py`` compiles searches)
- ``metrics.py``: metric blocks, latest values, batch ids (the hot path)
- ``run_artifacts.py``: artifact references of runs
- ``datasets.py``, ``models.py``, ``pipelines.py``, ``deployments.py``, ``predictions.py``, ``monitors.py``,
  ``identity.py``, ``labels.py``, ``privacy.py``: ``store.datasets``, ``store.models``, ``store.pipelines``,
  ``store.deployments``, ``store.predictions``, ``store.monitors``, ``store.identity``, ``store.labels``,
  ``store.privacy`` (``assessments.py``: the model registry's assessments)

The methods below only delegate; validation that does not depend on SQL is in ``keel.core``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

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
from keel.store.metadata.base import MetadataStore, MetricRow
from keel.store.metadata.sql.audit import SqlAuditStore
from keel.store.metadata.sql.database import Database
from keel.store.metadata.sql.experiments import SqlExperimentStore
from keel.store.metadata.sql.metrics import SqlMetricStore
from keel.store.metadata.sql.run_artifacts import SqlRunArtifactStore
from keel.store.metadata.sql.runs import RunKeys, SqlRunStore

if TYPE_CHECKING:
    from keel.store.metadata.sql.datasets import SqlDatasetStore
    from keel.store.metadata.sql.deployments import SqlDeploymentStore
    from keel.store.metadata.sql.identity import SqlIdentityStore
    from keel.store.metadata.sql.labels import SqlLabelStore
    from keel.store.metadata.sql.models import SqlModelStore
    from keel.store.metadata.sql.monitors import SqlMonitorStore
    from keel.store.metadata.sql.pipelines import SqlPipelineStore
    from keel.store.metadata.sql.predictions import SqlPredictionStore
    from keel.store.metadata.sql.privacy import SqlPrivacyStore


class SqlStore(MetadataStore):
    """Metadata store over a SQL database. See ``MetadataStore`` for the contract."""

    def __init__(self, uri: str, *, heartbeat_timeout: float = 30.0, migrate: bool = True) -> None:
        self.uri = uri
        self.db = Database(uri, migrate=migrate)
        self.engine = self.db.engine
        self.dialect = self.db.dialect
        keys = RunKeys(self.db)
        self._experiments = SqlExperimentStore(self.db)
        self._metrics = SqlMetricStore(self.db, keys)
        self._runs = SqlRunStore(self.db, keys, self._metrics, heartbeat_timeout)
        self._artifacts = SqlRunArtifactStore(self.db, keys)
        self._audit = SqlAuditStore(self.db)

    @property
    def heartbeat_timeout(self) -> float:
        return self._runs.heartbeat_timeout

    @heartbeat_timeout.setter
    def heartbeat_timeout(self, seconds: float) -> None:
        self._runs.heartbeat_timeout = seconds

    @property
    def audit(self) -> SqlAuditStore:
        """The audit log on the same database."""
        return self._audit

    @functools.cached_property
    def datasets(self) -> SqlDatasetStore:
        """Dataset versions on the same database."""
        from keel.store.metadata.sql.datasets import SqlDatasetStore

        return SqlDatasetStore(self.db)

    @functools.cached_property
    def models(self) -> SqlModelStore:
        """The model registry on the same database."""
        from keel.store.metadata.sql.models import SqlModelStore

        return SqlModelStore(self.db)

    @functools.cached_property
    def deployments(self) -> SqlDeploymentStore:
        """Deployments on the same database."""
        from keel.store.metadata.sql.deployments import SqlDeploymentStore

        return SqlDeploymentStore(self.db)

    @functools.cached_property
    def identity(self) -> SqlIdentityStore:
        """Principals, role bindings and API tokens on the same database."""
        from keel.store.metadata.sql.identity import SqlIdentityStore

        return SqlIdentityStore(self.db)

    @functools.cached_property
    def predictions(self) -> SqlPredictionStore:
        """The prediction log's index and labels on the same database."""
        from keel.store.metadata.sql.predictions import SqlPredictionStore

        return SqlPredictionStore(self.db)

    @functools.cached_property
    def monitors(self) -> SqlMonitorStore:
        """Monitors, windows, alerts, actions and leases on the same database."""
        from keel.store.metadata.sql.monitors import SqlMonitorStore

        return SqlMonitorStore(self.db)

    @functools.cached_property
    def labels(self) -> SqlLabelStore:
        """Label projects, items, tasks, annotations, reviews and exclusions on the same database."""
        from keel.store.metadata.sql.labels import SqlLabelStore

        return SqlLabelStore(self.db)

    @functools.cached_property
    def privacy(self) -> SqlPrivacyStore:
        """Privacy budgets of dataset versions and the spends of DP runs on the same database."""
        from keel.store.metadata.sql.privacy import SqlPrivacyStore

        return SqlPrivacyStore(self.db)

    @functools.cached_property
    def pipelines(self) -> SqlPipelineStore:
        """The step cache on the same database."""
        from keel.store.metadata.sql.pipelines import SqlPipelineStore

        return SqlPipelineStore(self.db)

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # experiments ----------------------------------------------------------------------
    def get_or_create_experiment(self, name: str, project: str = "default") -> Experiment:
        return self._experiments.get_or_create(name, project)

    def get_experiment(self, experiment_id: int) -> Experiment:
        return self._experiments.get(experiment_id)

    def get_experiment_by_name(self, name: str, project: str = "default") -> Experiment:
        return self._experiments.get_by_name(name, project)

    def list_experiments(self, project: str | None = None, view: ViewType = ViewType.ACTIVE) -> list[Experiment]:
        return self._experiments.list_all(project, view)

    def delete_experiment(self, experiment_id: int) -> None:
        self._experiments.delete(experiment_id)

    def restore_experiment(self, experiment_id: int) -> None:
        self._experiments.restore(experiment_id)

    # runs -----------------------------------------------------------------------------
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
        return self._runs.create(
            experiment_id,
            name,
            parent_run_id=parent_run_id,
            tags=tags,
            params=params,
            code=code,
            environment=environment,
            start_time=start_time,
            kind=kind,
            step=step,
            trial=trial,
        )

    def set_trial_result(self, run_id: str, state: TrialState, value: float | None = None) -> None:
        self._runs.set_trial_result(run_id, state, value)

    def list_child_runs(self, parent_run_id: str, *, status: RunStatus | None = None, kind: RunKind | None = None) -> list[Run]:
        return self._runs.children(parent_run_id, status=status, kind=kind)

    def find_latest_run(self, experiment_id: int, *, kind: RunKind, name: str) -> Run | None:
        return self._runs.latest(experiment_id, kind=kind, name=name)

    def get_run(self, run_id: str) -> Run:
        return self._runs.get(run_id)

    def delete_run(self, run_id: str) -> None:
        self._runs.delete(run_id)

    def restore_run(self, run_id: str) -> None:
        self._runs.restore(run_id)

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[MetricRow] = (),
        batch_id: str | None = None,
    ) -> None:
        self._runs.end(run_id, status, end_time, metrics, batch_id)

    def heartbeat(self, run_ids: Sequence[str], time_ms: int | None = None) -> None:
        self._runs.heartbeat(run_ids, time_ms)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        self._runs.log_params(run_id, params)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._runs.set_tags(run_id, tags)

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE,
    ) -> RunPage:
        return self._runs.search(experiment_ids, filter, order_by, max_results, page_token, view)

    # metrics: the hot path --------------------------------------------------------------
    def log_metrics(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        self._metrics.log(rows, batch_id)

    def metric_batch_applied(self, batch_id: str) -> bool:
        return self._metrics.batch_applied(batch_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self._metrics.history(run_id, key)

    def metric_series(self, run_id: str, key: str) -> tuple[Sequence[int], Sequence[float]]:
        return self._metrics.series(run_id, key)

    # artifacts ---------------------------------------------------------------------------
    def log_artifacts(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        self._artifacts.log(run_id, refs)

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        return self._artifacts.list_refs(run_id)

    def close(self) -> None:
        self.db.close()
