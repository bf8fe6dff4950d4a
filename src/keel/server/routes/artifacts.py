"""Artifact blobs proxied by the server: uploads are hashed while streamed and refused on mismatch.

Downloads stream the blob in chunks, hashed as they go: if the content does not match its
name, the connection is cut before the body completes, so a client never receives a whole,
well-formed wrong body (and ``HttpArtifactStore`` verifies what it receives anyway).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Send

from keel.core.errors import IntegrityError, NotFound
from keel.core.validation import check_sha256
from keel.server.auth import authorize
from keel.server.deps import artifacts_of
from keel.store.artifacts import ArtifactStore

log = logging.getLogger("keel.server")
read = APIRouter(prefix="/api/v1", tags=["artifacts"], dependencies=[Depends(authorize)])
write = APIRouter(prefix="/api/v1", tags=["artifacts"], dependencies=[Depends(authorize)])


class VerifiedBlobResponse(StreamingResponse):
    """Streams a blob's verified chunks; on ``IntegrityError`` leaves the body unfinished.

    The status line went out with the first chunk, so the only honest signal left is to
    never complete the body: the HTTP server then closes the connection and the client sees
    a truncated response, not a complete wrong one.
    """

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except IntegrityError as exc:
            log.error("download aborted: %s", exc.message)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@read.head("/artifacts/{sha256}")
def has_artifact(sha256: str, artifacts: ArtifactStore = Depends(artifacts_of)) -> Response:
    if not artifacts.exists(check_sha256(sha256)):
        raise NotFound(f"artifact {sha256} does not exist")
    return Response(status_code=200)


@read.get("/artifacts/{sha256}")
def get_artifact(sha256: str, artifacts: ArtifactStore = Depends(artifacts_of)) -> Response:
    # NotFound is raised here, before the response starts; IntegrityError after the last chunk,
    # which aborts the response mid-body (the status line is already sent)
    chunks = artifacts.iter_bytes(check_sha256(sha256))
    return VerifiedBlobResponse(chunks, media_type="application/octet-stream")


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
    # the caller uploaded these bytes: a loader trusts a pickle by who uploaded it (identity.blob_trust)
    await run_in_threadpool(request.app.state.store.identity.record_blob_writer, info.sha256)
    return {"sha256": info.sha256, "size": info.size}
