"""Tracking routes written by hand; the others are made from the endpoint table (``keel.server.endpoints``).

Why each is here is said in ``keel.store.metadata.rest.endpoints``: the metric flush (orjson, batch id in a
header, resends looked up before parsing), ``end_run`` (batch id in a header) and ``GET /experiments`` (a name
filter no single store method has).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from keel.core.entities import RunStatus
from keel.core.errors import InvalidArgument
from keel.server.auth import authorize, caller_of
from keel.server.deps import store_of
from keel.server.ownership import require_run_owner
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest import schemas, wire
from keel.store.metadata.search import check_view

read = APIRouter(prefix="/api/v1", tags=["tracking"], dependencies=[Depends(authorize)])
write = APIRouter(prefix="/api/v1", tags=["tracking"], dependencies=[Depends(authorize)])


@read.get("/experiments")
def list_experiments(
    request: Request,
    name: str | None = None,
    project: str | None = None,
    view: str | None = None,
    store: MetadataStore = Depends(store_of),
) -> list[dict[str, Any]]:
    """The experiments (of ``project``, named ``name``) in the projects the caller may read: the live ones unless
    ``view`` is ``deleted`` or ``all``; by ``name``, deleted or not unless ``view`` says (a lookup by name finds a
    deleted experiment, as a lookup by id does)."""
    caller = caller_of(request)
    chosen = check_view(view if view is not None else ("all" if name is not None else "active"))
    experiments = store.list_experiments(project, chosen)
    if name is not None:
        experiments = [e for e in experiments if e.name == name]
    return [wire.experiment_to_json(e) for e in experiments if caller.may_in("read", e.project)]


@write.post("/runs/{run_id}/end")
def end_run(
    run_id: str,
    body: schemas.EndRunIn,
    request: Request,
    store: MetadataStore = Depends(store_of),
    idempotency_key: str | None = Header(default=None),
) -> dict[str, Any]:
    """End a run with its last metric values; a resend under the same ``Idempotency-Key`` is a no-op."""
    try:
        status = RunStatus(body.status)
    except ValueError:
        raise InvalidArgument.for_field("status", body.status, "one of finished, failed, killed") from None
    rows = wire.metric_rows_from_json({"rows": body.metrics})
    require_run_owner(request, [run_id, *(row[0] for row in rows)])
    store.end_run(run_id, status, body.end_time, rows, batch_id=idempotency_key)
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
    caller = caller_of(request)
    if caller.authenticated and not caller.may_everywhere("admin"):  # an open server or an admin: no lookup, no thread hop
        await run_in_threadpool(require_run_owner, request, [row[0] for row in rows])
    await run_in_threadpool(store.log_metrics, rows, batch_id)
    return {"stored": len(rows)}
