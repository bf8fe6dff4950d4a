"""FastAPI dependencies giving routes the server's stores."""

from __future__ import annotations

from fastapi import Request

from keel.store.artifacts import ArtifactStore
from keel.store.metadata.base import MetadataStore


def store_of(request: Request) -> MetadataStore:
    store: MetadataStore = request.app.state.store
    return store


def artifacts_of(request: Request) -> ArtifactStore:
    artifacts: ArtifactStore = request.app.state.artifacts
    return artifacts
