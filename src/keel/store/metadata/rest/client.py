"""``RestStore``: the tracking store interface over HTTP, against a ``keel server``.

One HTTP request per store call; a metric flush is one ``POST /api/v1/metrics``.
Server errors come back as the same ``keel`` error classes (``keel.store.http_transport``).

Metric writes (``log_metrics``, ``end_run``) carry a batch id in the ``Idempotency-Key``
header, so they are safe to resend: the transport sends them again with the same id when no
answer came back, and the server applies them once.
"""

from __future__ import annotations

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
)
from keel.core.errors import InvalidArgument, NotFound
from keel.core.validation import param_to_str
from keel.store.http_transport import IDEMPOTENCY_KEY, RESEND, HttpTransport
from keel.store.metadata.base import (
    MetadataStore,
    MetricRow,
    check_batch_id,
    check_run_kind,
    check_trial_result,
    new_batch_id,
)
from keel.store.metadata.rest import wire

if TYPE_CHECKING:
    from keel.store.metadata.rest.datasets import RestDatasetStore
    from keel.store.metadata.rest.models import RestModelStore
    from keel.store.metadata.rest.pipelines import RestPipelineStore

__all__ = ["IDEMPOTENCY_KEY", "RESEND", "RestStore"]


class RestStore(MetadataStore):
    def __init__(
        self,
        uri: str,
        *,
        heartbeat_timeout: float | None = None,
        timeout: float | Any = 60.0,  # seconds, or an httpx.Timeout
        token: str | None = None,
    ) -> None:
        self.uri = uri.rstrip("/")
        self._heartbeat_timeout: float | None = None
        self.transport = HttpTransport(self.uri, timeout=timeout, token=token)

    def __repr__(self) -> str:
        return f"RestStore({self.uri!r})"

    @property
    def models(self) -> RestModelStore:
        from keel.store.metadata.rest.models import RestModelStore

        return RestModelStore(self)

    @property
    def pipelines(self) -> RestPipelineStore:
        from keel.store.metadata.rest.pipelines import RestPipelineStore

        return RestPipelineStore(self)

    @property
    def datasets(self) -> RestDatasetStore:
        from keel.store.metadata.rest.datasets import RestDatasetStore

        return RestDatasetStore(self)

    @property
    def heartbeat_timeout(self) -> float:  # type: ignore[override]
        """The server's: it decides when a silent run reads as killed."""
        if self._heartbeat_timeout is None:
            self._heartbeat_timeout = float(self._call("GET", "/health")["heartbeat_timeout"])
        return self._heartbeat_timeout

    def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None, batch_id: str | None = None
    ) -> Any:
        return self.transport.call(method, path, body, params=params, idempotency_key=batch_id)

    # experiments -----------------------------------------------------------------------
    def get_or_create_experiment(self, name: str, project: str = "default") -> Experiment:
        return wire.experiment_from_json(self._call("POST", "/experiments", {"name": name, "project": project}))

    def get_experiment(self, experiment_id: int) -> Experiment:
        return wire.experiment_from_json(self._call("GET", f"/experiments/{int(experiment_id)}"))

    def get_experiment_by_name(self, name: str, project: str = "default") -> Experiment:
        found = self._call("GET", "/experiments", params={"name": name, "project": project})
        if not found:
            raise NotFound(f"experiment {name!r} does not exist in project {project!r}")
        return wire.experiment_from_json(found[0])

    def list_experiments(self, project: str | None = None) -> list[Experiment]:
        params = {"project": project} if project is not None else None
        return [wire.experiment_from_json(e) for e in self._call("GET", "/experiments", params=params)]

    # runs ------------------------------------------------------------------------------
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
        kind, step, trial = check_run_kind(kind, step, trial)
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "parent_run_id": parent_run_id,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "params": _param_texts(params or {}),
            "code": wire.code_to_json(code) if code else None,
            "environment": wire.environment_to_json(environment) if environment else None,
            "start_time": start_time,
            "kind": kind.value,
            "step": wire.step_to_json(step) if step is not None else None,
            "trial": {"number": trial.number, "params": dict(trial.params)} if trial is not None else None,
        }
        return wire.run_from_json(self._call("POST", "/runs", body))

    def set_trial_result(self, run_id: str, state: TrialState, value: float | None = None) -> None:
        state, value = check_trial_result(state, value)
        body = {"state": state.value, "value": wire.encode_float(value) if value is not None else None}
        self._call("POST", f"/runs/{_rid(run_id)}/trial-result", body)

    def list_child_runs(self, parent_run_id: str, *, status: RunStatus | None = None, kind: RunKind | None = None) -> list[Run]:
        query = {}
        if status is not None:
            query["status"] = str(status)  # a StrEnum reads as its value; the server checks it
        if kind is not None:
            query["kind"] = check_run_kind(kind, None, None)[0].value
        return [wire.run_from_json(r) for r in self._call("GET", f"/runs/{_rid(parent_run_id)}/children", params=query)]

    def find_latest_run(self, experiment_id: int, *, kind: RunKind, name: str) -> Run | None:
        query = {"kind": check_run_kind(kind, None, None)[0].value, "name": name}
        found = self._call("GET", f"/experiments/{int(experiment_id)}/latest-run", params=query)["run"]
        return wire.run_from_json(found) if found is not None else None

    def get_run(self, run_id: str) -> Run:
        return wire.run_from_json(self._call("GET", f"/runs/{_rid(run_id)}"))

    def end_run(
        self,
        run_id: str,
        status: RunStatus,
        end_time: int | None = None,
        metrics: Sequence[MetricRow] = (),
        batch_id: str | None = None,
    ) -> None:
        body = {
            "status": RunStatus(status).value if isinstance(status, RunStatus) else status,
            "end_time": end_time,
            "metrics": wire.metric_rows_to_json(metrics),
        }
        batch_id = new_batch_id() if batch_id is None else check_batch_id(batch_id)
        self._call("POST", f"/runs/{_rid(run_id)}/end", body, batch_id=batch_id)

    def heartbeat(self, run_ids: Sequence[str], time_ms: int | None = None) -> None:
        if run_ids:
            self._call("POST", "/runs/heartbeat", {"run_ids": list(run_ids), "time": time_ms})

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        self._call("POST", f"/runs/{_rid(run_id)}/params", {"params": _param_texts(params)})

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._call("POST", f"/runs/{_rid(run_id)}/tags", {"tags": {k: str(v) for k, v in tags.items()}})

    def log_metrics(self, rows: Sequence[MetricRow], batch_id: str | None = None) -> None:
        if rows:
            batch_id = new_batch_id() if batch_id is None else check_batch_id(batch_id)
            self._call("POST", "/metrics", {"rows": wire.metric_rows_to_json(rows)}, batch_id=batch_id)

    def metric_batch_applied(self, batch_id: str) -> bool:
        return bool(self._call("GET", f"/metric-batches/{check_batch_id(batch_id)}")["applied"])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        data = self._call("GET", f"/runs/{_rid(run_id)}/metrics", params={"key": key})
        return [Metric(run_id, key, wire.decode_float(v), s, t) for v, s, t in data]

    def log_artifacts(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        if refs:
            self._call("POST", f"/runs/{_rid(run_id)}/artifacts", {"artifacts": [wire.artifact_to_json(r) for r in refs]})

    def list_artifacts(self, run_id: str) -> list[ArtifactRef]:
        return [wire.artifact_from_json(a) for a in self._call("GET", f"/runs/{_rid(run_id)}/artifacts")]

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        body = {
            "experiment_ids": list(experiment_ids) if experiment_ids is not None else None,
            "filter": filter,
            "order_by": list(order_by),
            "max_results": max_results,
            "page_token": page_token,
        }
        data = self._call("POST", "/runs/search", body)
        return RunPage([wire.run_from_json(r) for r in data["runs"]], data.get("next_page_token"))

    def close(self) -> None:
        self.transport.close()


def _param_texts(params: Mapping[str, Any]) -> dict[str, str]:
    """Param values as the server's store keeps them (the one conversion: ``core.validation.param_to_str``)."""
    if not isinstance(params, Mapping):
        raise InvalidArgument.for_field("params", params, "a mapping of key to value")
    return {k: param_to_str(k, val) for k, val in params.items()}


def _rid(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id or not run_id.isalnum():
        raise InvalidArgument.for_field("run_id", run_id, "a run id (letters and digits)")
    return run_id
