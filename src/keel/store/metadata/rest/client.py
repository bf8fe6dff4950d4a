"""``RestStore``: the tracking store interface over HTTP, against a ``keel server``.

One HTTP request per store call; a metric flush is one ``POST /api/v1/metrics``.
Server errors come back as the same ``keel`` error classes.

Metric writes (``log_metrics``, ``end_run``) carry a batch id in the ``Idempotency-Key``
header, so they are safe to resend: when the connection fails or times out, or a proxy or
the server answers 502/503/504, they are sent again with the same id (up to ``RETRIES``
times, backing off exponentially with jitter) and the server applies them once. A resend,
and a later call with a batch id that never got an answer (the metric writer keeps such a
batch and sends it again), also carries ``Keel-Resend: 1``: only then does the server look
the id up before parsing the body, so a first send costs no extra read.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from keel.core.entities import ArtifactRef, CodeVersion, Environment, Experiment, Metric, Run, RunPage, RunStatus
from keel.core.errors import InvalidArgument, NotFound, StoreUnavailable, error_from_dict
from keel.core.validation import param_to_str
from keel.store.metadata.base import MetricRow, TrackingStore, check_batch_id, new_batch_id
from keel.store.metadata.rest import wire

if TYPE_CHECKING:
    from keel.store.metadata.rest.datasets import RestDatasetStore
    from keel.store.metadata.rest.models import RestModelStore
    from keel.store.metadata.rest.pipelines import RestPipelineStore

API = "/api/v1"
IDEMPOTENCY_KEY = "idempotency-key"
RESEND = "keel-resend"
_UNANSWERED_MAX = 10_000  # batch ids remembered as sent without an answer: a few hundred KB at most
log = logging.getLogger("keel.store")
RETRIES = 3  # resends of an idempotent write after the first attempt
BACKOFF_S = 0.2  # first wait; doubles per resend, up to MAX_BACKOFF_S, each drawn in [half, full]
MAX_BACKOFF_S = 5.0
_RETRY_STATUS = frozenset({502, 503, 504})


class RestStore(TrackingStore):
    def __init__(
        self,
        uri: str,
        *,
        heartbeat_timeout: float | None = None,
        timeout: float | Any = 60.0,  # seconds, or an httpx.Timeout
        token: str | None = None,
    ) -> None:
        import httpx

        self.uri = uri.rstrip("/")
        self._heartbeat_timeout: float | None = None
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self._client = httpx.Client(base_url=self.uri, timeout=timeout, headers=headers)
        self._unanswered: dict[str, None] = {}  # batch ids sent without an answer, oldest first

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

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        content = orjson.dumps(body) if body is not None else None
        try:
            response = self._client.request(method, API + path, content=content, params=params)
        except self._httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach keel server {self.uri}: {exc}") from None
        return self._answer(response)

    def _resend_until_answered(self, path: str, body: dict[str, Any], batch_id: str) -> Any:
        """POST a write under a batch id, resending it with backoff when no answer came back.

        Safe only because the server applies a batch id once: the first attempt may have been
        committed even though its answer was lost.
        """
        content = orjson.dumps(body)
        headers = {IDEMPOTENCY_KEY: batch_id}
        failure = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                log.warning("keel: resending batch %s to %s%s after: %s", batch_id, self.uri, path, failure)
            if attempt or batch_id in self._unanswered:
                headers[RESEND] = "1"
            try:
                response = self._client.request("POST", API + path, content=content, headers=headers)
            except self._httpx.HTTPError as exc:
                failure = f"cannot reach keel server {self.uri}: {exc.__class__.__name__}: {exc}"
            else:
                if response.status_code not in _RETRY_STATUS:
                    self._unanswered.pop(batch_id, None)
                    return self._answer(response)
                failure = f"keel server {self.uri} answered HTTP {response.status_code}: {response.text[:200]}"
            if attempt < RETRIES:
                time.sleep(min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt) * random.uniform(0.5, 1.0))
        if len(self._unanswered) >= _UNANSWERED_MAX:
            self._unanswered.pop(next(iter(self._unanswered)))
        self._unanswered[batch_id] = None
        raise StoreUnavailable(f"{failure} (sent {RETRIES + 1} times)")

    def _answer(self, response: Any) -> Any:
        try:
            payload = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            # not a keel server's answer: a proxy's error page, a captive portal, another service on the port
            if response.status_code >= 500 or response.status_code < 400:
                raise StoreUnavailable(
                    f"keel server {self.uri} answered HTTP {response.status_code} with a body that is not JSON: "
                    f"{response.text[:200]!r}"
                ) from None
            raise error_from_dict({"message": response.text[:200]}, response.status_code) from None
        if response.status_code >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            raise error_from_dict(error if isinstance(error, dict) else {"message": str(payload)[:200]}, response.status_code)
        return payload

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
    ) -> Run:
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "parent_run_id": parent_run_id,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "params": _param_texts(params or {}),
            "code": wire.code_to_json(code) if code else None,
            "environment": wire.environment_to_json(environment) if environment else None,
            "start_time": start_time,
        }
        return wire.run_from_json(self._call("POST", "/runs", body))

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
        self._resend_until_answered(f"/runs/{_rid(run_id)}/end", body, batch_id)

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
            self._resend_until_answered("/metrics", {"rows": wire.metric_rows_to_json(rows)}, batch_id)

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
        self._client.close()


def _param_texts(params: Mapping[str, Any]) -> dict[str, str]:
    """Param values as the server's store keeps them (the one conversion: ``core.validation.param_to_str``)."""
    if not isinstance(params, Mapping):
        raise InvalidArgument.for_field("params", params, "a mapping of key to value")
    return {k: param_to_str(k, val) for k, val in params.items()}


def _rid(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id or not run_id.isalnum():
        raise InvalidArgument.for_field("run_id", run_id, "a run id (letters and digits)")
    return run_id
