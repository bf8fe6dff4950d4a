"""Model registry routes. Alias moves record the caller as the actor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keel.server import schemas
from keel.server.auth import require_writer
from keel.server.deps import store_of
from keel.store.metadata.base import TrackingStore
from keel.store.metadata.rest import wire

read = APIRouter(prefix="/api/v1", tags=["models"])
write = APIRouter(prefix="/api/v1", tags=["models"], dependencies=[Depends(require_writer)])


@write.post("/models/versions")
def create_version(body: schemas.ModelVersionIn, store: TrackingStore = Depends(store_of)) -> dict[str, Any]:
    data = body.model_dump()
    name = data.pop("name")
    return wire.model_version_to_json(store.models.create_version(name, **data))


@read.get("/models")
def list_models(store: TrackingStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.model_version_to_json(v) for v in store.models.list_models()]


@read.get("/models/{name}/versions")
def list_versions(name: str, store: TrackingStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.model_version_to_json(v) for v in store.models.list_versions(name)]


@read.get("/models/{name}/versions/{version}")
def get_version(name: str, version: int, store: TrackingStore = Depends(store_of)) -> dict[str, Any]:
    return wire.model_version_to_json(store.models.get_version(name, version))


@read.get("/models/{name}/aliases/{alias}")
def resolve_alias(name: str, alias: str, store: TrackingStore = Depends(store_of)) -> dict[str, Any]:
    return wire.model_version_to_json(store.models.resolve_alias(name, alias))


@write.put("/models/{name}/aliases/{alias}")
def set_alias(
    name: str, alias: str, body: schemas.AliasIn, request: Request, store: TrackingStore = Depends(store_of)
) -> dict[str, Any]:
    principal = getattr(request.state, "principal", None)
    actor = body.actor or (principal.name if principal else "unknown")
    return wire.alias_change_to_json(store.models.set_alias(name, alias, body.version, actor=actor, reason=body.reason))


@read.get("/models/{name}/history")
def alias_history(name: str, alias: str | None = None, store: TrackingStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.alias_change_to_json(c) for c in store.models.alias_history(name, alias)]
