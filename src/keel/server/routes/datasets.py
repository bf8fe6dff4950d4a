"""Dataset routes: versions, lineage, run links, profiles, validation records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from keel.core.errors import InvalidArgument
from keel.server import schemas
from keel.server.auth import require_writer
from keel.server.deps import store_of
from keel.store.metadata.base import MetadataStore
from keel.store.metadata.rest import wire

read = APIRouter(prefix="/api/v1", tags=["datasets"])
write = APIRouter(prefix="/api/v1", tags=["datasets"], dependencies=[Depends(require_writer)])


@write.post("/datasets/versions")
def log_version(body: schemas.DatasetVersionIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    version, created = store.datasets.log_version(
        body.name,
        content_hash=body.content_hash,
        artifact_sha256=body.artifact_sha256,
        size=body.size,
        row_count=body.row_count,
        schema=wire.schema_from_json(body.schema_),
        source=body.source,
        role=body.role,
        parent_ids=body.parent_ids,
        transform=body.transform,
        profile=body.profile,
    )
    return {"version": wire.version_to_json(version), "created": created}


@read.get("/datasets")
def list_datasets(store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.version_to_json(v) for v in store.datasets.list_datasets()]


@read.get("/datasets/by-name/versions")
def get_version(name: str, version: str = "latest", store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    if version == "latest":
        number = None
    else:
        try:
            number = int(version)
        except ValueError:
            raise InvalidArgument.for_field("version", version, "a positive integer or 'latest'") from None
    return wire.version_to_json(store.datasets.get_version(name, number))


@read.get("/datasets/by-name/all")
def list_versions(name: str, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.version_to_json(v) for v in store.datasets.list_versions(name)]


@read.get("/datasets/versions/{version_id}")
def get_version_by_id(version_id: int, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return wire.version_to_json(store.datasets.get_version_by_id(version_id))


@read.get("/datasets/versions/{version_id}/profile")
def get_profile(version_id: int, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    return {"profile": store.datasets.get_profile(version_id)}


@read.get("/datasets/versions/{version_id}/children")
def children(version_id: int, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.version_to_json(v) for v in store.datasets.children(version_id)]


@write.post("/datasets/versions/{version_id}/runs")
def link_run(version_id: int, body: schemas.RunLinkIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    store.datasets.link_run(body.run_id, version_id, body.direction)
    return {}


@read.get("/datasets/versions/{version_id}/runs")
def runs_of_version(version_id: int, store: MetadataStore = Depends(store_of)) -> list[list[str]]:
    return [[r, d] for r, d in store.datasets.runs_of_version(version_id)]


@read.get("/runs/{run_id}/datasets")
def versions_of_run(run_id: str, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.run_dataset_link_to_json(link) for link in store.datasets.versions_of_run(run_id)]


@write.post("/datasets/versions/{version_id}/validations")
def save_validation(version_id: int, body: schemas.ValidationIn, store: MetadataStore = Depends(store_of)) -> dict[str, Any]:
    record = store.datasets.save_validation(version_id, body.suite, body.passed, body.errors, body.warnings, body.result)
    return wire.validation_to_json(record)


@read.get("/datasets/versions/{version_id}/validations")
def list_validations(version_id: int, store: MetadataStore = Depends(store_of)) -> list[dict[str, Any]]:
    return [wire.validation_to_json(r) for r in store.datasets.list_validations(version_id)]
