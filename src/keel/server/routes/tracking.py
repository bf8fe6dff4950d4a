"""Tracking routes: experiments, runs, params, tags, metrics, artifact references, search."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from keel.core.entities import ArtifactRef, CodeVersion, Environment, RunKind, RunStatus, StepInfo, TrialInfo
from keel.core.errors import InvalidArgument
from keel.server import schemas
from keel.server.auth import require_writer
from keel.server.deps import store_of
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest import wire

read = APIRouter(prefix="/api/v1", tags=["tracking"])
write = APIRouter(prefix="/api/v1", tags=["tracking"], dependencies=[Depends(require_writer)])


@write.post("/experiments")
def create_experiment(body: schemas.ExperimentIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return wire.experiment_to_json(store.get_or_create_experiment(body.name, body.project))


@read.get("/experiments")
def list_experiments(
    name: str | None = None, project: str | None = None, store: MetadataStore = Depends(store_of)
) -> list[dict[str, Any]]:
    experiments = store.list_experiments(project)
    if name is not None:
        experiments = [e for e in experiments if e.name == name]
    return [wire.experiment_to_json(e) for e in experiments]


@read.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: int, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return wire.experiment_to_json(store.get_experiment(experiment_id))


@write.post("/runs")
def create_run(body: schemas.RunIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    run = store.create_run(
        body.experiment_id,
        body.name,
        parent_run_id=body.parent_run_id,
        tags=body.tags,
        params=body.params,
        code=CodeVersion(**body.code.model_dump()) if body.code else None,
        environment=Environment(**body.environment.model_dump()) if body.environment else None,
        start_time=body.start_time,
        kind=_kind(body.kind),
        step=StepInfo(**body.step.model_dump()) if body.step else None,
        trial=TrialInfo(body.trial.number, body.trial.params) if body.trial else None,
    )
    return wire.run_to_json(run)


def _kind(value: str) -> RunKind:
    try:
        return RunKind(value)
    except ValueError:
        raise InvalidArgument.for_field("kind", value, f"one of {', '.join(k.value for k in RunKind)}") from None


def _status(value: str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        raise InvalidArgument.for_field("status", value, f"one of {', '.join(s.value for s in RunStatus)}") from None


@write.post("/runs/{run_id}/trial-result")
def set_trial_result(run_id: str, body: schemas.TrialResultIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    value = wire.decode_float(body.value, "trial value") if body.value is not None else None
    store.set_trial_result(run_id, body.state, value)  # type: ignore[arg-type]  # the store checks the state
    return {}


@read.get("/runs/{run_id}/children")
def list_child_runs(
    run_id: str, status: str | None = None, kind: str | None = None, store: MetadataStore = Depends(store_of)
) -> list[dict[str, Any]]:
    runs = store.list_child_runs(
        run_id, status=_status(status) if status is not None else None, kind=_kind(kind) if kind is not None else None
    )
    return [wire.run_to_json(r) for r in runs]


@read.get("/experiments/{experiment_id}/latest-run")
def find_latest_run(experiment_id: int, kind: str, name: str, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    run = store.find_latest_run(experiment_id, kind=_kind(kind), name=name)
    return {"run": wire.run_to_json(run) if run is not None else None}


@write.post("/runs/search")
def search_runs(body: schemas.SearchIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    # a POST because filters and order lists are awkward in a query string; it writes nothing
    page = store.search_runs(body.experiment_ids, body.filter, body.order_by, body.max_results, body.page_token)
    return {"runs": [wire.run_to_json(r) for r in page.runs], "next_page_token": page.next_page_token}


@write.post("/runs/heartbeat")
def heartbeat(body: schemas.HeartbeatIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    store.heartbeat(body.run_ids, body.time)
    return {}


@read.get("/runs/{run_id}")
def get_run(run_id: str, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return wire.run_to_json(store.get_run(run_id))


@write.post("/runs/{run_id}/end")
def end_run(
    run_id: str,
    body: schemas.EndRunIn,
    store: MetadataStore = Depends(store_of),
    idempotency_key: str | None = Header(default=None),
) -> dict[str, Any]:
    """End a run with its last metric values; a resend under the same ``Idempotency-Key`` is a no-op."""
    try:
        status = RunStatus(body.status)
    except ValueError:
        raise InvalidArgument.for_field("status", body.status, "one of finished, failed, killed") from None
    rows = wire.metric_rows_from_json({"rows": body.metrics})
    store.end_run(run_id, status, body.end_time, rows, batch_id=idempotency_key)
    return {}


@write.post("/runs/{run_id}/params")
def log_params(run_id: str, body: schemas.ParamsIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    store.log_params(run_id, body.params)
    return {}


@write.post("/runs/{run_id}/tags")
def set_tags(run_id: str, body: schemas.TagsIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    store.set_tags(run_id, body.tags)
    return {}


@write.post("/metrics")
async def log_metrics(
    request: Request,
    store: MetadataStore = Depends(store_of),
    idempotency_key: str | None = Header(default=None),
    keel_resend: str | None = Header(default=None),
) -> dict[str, Any]:
    """One flush of a client's metric buffer: ``{"rows": [[run_id, key, value, step, timestamp], ...]}``.

    Parsed with orjson rather than pydantic: batches carry up to tens of thousands of rows.
    A batch resent under the same ``Idempotency-Key`` header is stored once: the store claims
    the id in the write's own transaction. A resend (``Keel-Resend: 1``, sent by ``RestStore``
    for a batch it sent before without an answer) is first looked up and, when it was applied
    already, not even parsed: a client whose timeout is shorter than a big batch's first write
    still gets a quick answer. First sends skip that lookup: one read transaction less per flush.
    """
    batch_id = idempotency_key
    if batch_id is not None and keel_resend and await run_in_threadpool(store.metric_batch_applied, batch_id):
        return {"stored": 0, "duplicate": True}
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}") from None
    rows = wire.metric_rows_from_json(payload)
    await run_in_threadpool(store.log_metrics, rows, batch_id)
    return {"stored": len(rows)}


@read.get("/metric-batches/{batch_id}")
def metric_batch(batch_id: str, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    """Whether a metric write with this batch id was applied."""
    return {"applied": store.metric_batch_applied(batch_id)}


@read.get("/runs/{run_id}/metrics")
def metric_history(run_id: str, key: str, store: MetadataStore = Depends(store_of)) -> list[list[Any]]:
    return [wire.metric_to_json(m) for m in store.get_metric_history(run_id, key)]


@write.post("/runs/{run_id}/artifacts")
def log_artifacts(run_id: str, body: schemas.ArtifactsIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    store.log_artifacts(run_id, [ArtifactRef(a.path, a.sha256, a.size, a.media_type) for a in body.artifacts])
    return {}


@read.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.artifact_to_json(a) for a in store.list_artifacts(run_id)]
