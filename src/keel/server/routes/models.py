"""Model registry routes. Alias moves go through the store's gates (``ModelStore.move_alias``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from keel.server import schemas
from keel.server.auth import require_writer
from keel.server.deps import store_of
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest import wire

read = APIRouter(prefix="/api/v1", tags=["models"])
write = APIRouter(prefix="/api/v1", tags=["models"], dependencies=[Depends(require_writer)])


@write.post("/models/versions")
def create_version(body: schemas.ModelVersionIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    data = body.model_dump()
    name = data.pop("name")
    return wire.model_version_to_json(store.models.create_version(name, **data))


@read.get("/models")
def list_models(store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.model_version_to_json(v) for v in store.models.list_models()]


@read.get("/models/{name}/versions")
def list_versions(name: str, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.model_version_to_json(v) for v in store.models.list_versions(name)]


@read.get("/models/{name}/versions/{version}")
def get_version(name: str, version: int, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return wire.model_version_to_json(store.models.get_version(name, version))


@read.get("/models/{name}/aliases/{alias}")
def resolve_alias(name: str, alias: str, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return wire.model_version_to_json(store.models.resolve_alias(name, alias))


@write.put("/models/{name}/aliases/{alias}")
def move_alias(
    name: str, alias: str, body: schemas.AliasIn, request: Request, store: MetadataStore = Depends(store_of)
) -> dict[str, Any]:
    """The only way to move an alias over HTTP: the store checks the gates and the holder in one transaction, and
    a move without gates is refused unless the body says ``force`` (then recorded as forced)."""
    principal = getattr(request.state, "principal", None)
    # TODO(issue 12, governance): the actor is the authenticated principal. Until then the server cannot verify a
    # name a client sends, so it records it as given but marked "(client-declared)"; no name: the principal's.
    actor = f"{body.actor} (client-declared)" if body.actor else (principal.name if principal else "unknown")
    change = store.models.move_alias(
        name, alias, body.version, rules=body.rules, require_valid_data=body.require_valid_data,
        expected_from=body.expected_from, force=body.force, actor=actor, reason=body.reason,
    )  # fmt: skip
    return wire.alias_change_to_json(change)


@read.get("/models/{name}/history")
def alias_history(name: str, alias: str | None = None, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.alias_change_to_json(c) for c in store.models.alias_history(name, alias)]
