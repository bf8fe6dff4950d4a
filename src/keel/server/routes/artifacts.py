"""Artifact blobs proxied by the server: uploads are hashed while streamed and refused on mismatch."""

from __future__ import annotations

import hashlib
import os
import tempfile

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from keel.core.errors import IntegrityError, NotFound
from keel.core.validation import check_sha256
from keel.server.auth import require_writer
from keel.server.deps import artifacts_of
from keel.store.artifacts import ArtifactStore

read = APIRouter(prefix="/api/v1", tags=["artifacts"])
write = APIRouter(prefix="/api/v1", tags=["artifacts"], dependencies=[Depends(require_writer)])


@read.head("/artifacts/{sha256}")
def has_artifact(sha256: str, artifacts: ArtifactStore = Depends(artifacts_of)) -> Response:
    if not artifacts.exists(check_sha256(sha256)):
        raise NotFound(f"artifact {sha256} does not exist")
    return Response(status_code=200)


@read.get("/artifacts/{sha256}")
def get_artifact(sha256: str, artifacts: ArtifactStore = Depends(artifacts_of)) -> Response:
    data = artifacts.get_bytes(check_sha256(sha256))  # verified against its hash
    return Response(content=data, media_type="application/octet-stream")


@write.put("/artifacts/{sha256}")
async def put_artifact(sha256: str, request: Request, artifacts: ArtifactStore = Depends(artifacts_of)) -> dict[str, object]:
    check_sha256(sha256)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix="keel-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"uploaded content hashes to {digest.hexdigest()}, not to {sha256}; nothing stored")
        info = await run_in_threadpool(artifacts.put_file, tmp)
    finally:
        os.unlink(tmp)
    return {"sha256": info.sha256, "size": info.size}
