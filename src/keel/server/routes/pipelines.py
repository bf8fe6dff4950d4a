"""Step-cache routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from keel.core.validation import check_sha256
from keel.server import schemas
from keel.server.auth import require_writer
from keel.server.deps import store_of
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest import wire

read = APIRouter(prefix="/api/v1", tags=["pipelines"])
write = APIRouter(prefix="/api/v1", tags=["pipelines"], dependencies=[Depends(require_writer)])


@write.put("/step-cache/{cache_key}")
def save_step(cache_key: str, body: schemas.StepCacheIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    store.pipelines.save_step(cache_key, body.run_id, body.step, body.outputs)
    return {}


@read.get("/step-cache/{cache_key}")
def find_step(cache_key: str, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    found = store.pipelines.find_step(check_sha256(cache_key))
    return {"entry": wire.cached_step_to_json(found) if found else None}
