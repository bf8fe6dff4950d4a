"""Artifacts proxied by a keel server (``PUT/GET /api/v1/artifacts/{sha256}``).

The server verifies uploads; this client verifies downloads, which it streams to disk.
A put skips the upload when the server has the blob (HEAD). A blob that fails its hash on the
server is moved aside there by the read that found it (``FsspecArtifactStore``), so HEAD says
404 and the next put from any process uploads it again. In this process a blob whose read
failed is also remembered as suspect and uploaded whatever HEAD says (a server whose store
could not move the blob aside still replaces it: its put checks the hash before skipping).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.core.errors import IntegrityError, NotFound, StoreUnavailable
from keel.core.validation import check_sha256
from keel.store.artifacts.base import CHUNK, ArtifactStore, BlobInfo, check_digest, hash_file, verified_chunks
from keel.store.http_transport import API, HttpTransport

UPLOAD = {"content-type": "application/octet-stream"}  # a blob, not JSON: the server accepts these bytes as they are


class HttpArtifactStore(ArtifactStore):
    """``token``: as ``HttpTransport``'s (``None`` takes the configured one)."""

    def __init__(
        self, url: str, *, timeout: float | Any = 60.0, headers: dict[str, str] | None = None, token: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.transport = HttpTransport(self.url, timeout=timeout, token=token, headers=headers)
        self._suspect: set[str] = set()  # blobs whose read failed: the next put uploads them whatever HEAD says

    def _request(self, method: str, sha256: str, **kwargs: Any) -> Any:
        response = self.transport.send(method, f"{API}/artifacts/{check_sha256(sha256)}", **kwargs)
        self.transport.check(response)
        return response

    def exists(self, sha256: str) -> bool:
        try:
            self._request("HEAD", sha256)
        except NotFound:
            return False
        return True

    def _needs_upload(self, sha256: str) -> bool:
        return sha256 in self._suspect or not self.exists(sha256)

    def put_bytes(self, data: bytes) -> BlobInfo:
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if self._needs_upload(info.sha256):
            self._request("PUT", info.sha256, content=data, headers=UPLOAD)
            self._suspect.discard(info.sha256)
        return info

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        info = hash_file(path)
        if self._needs_upload(info.sha256):

            def chunks() -> Any:
                with open(path, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield chunk

            self._request("PUT", info.sha256, content=chunks(), headers=UPLOAD)
            self._suspect.discard(info.sha256)
        return info

    @contextlib.contextmanager
    def _reading(self, sha256: str) -> Iterator[None]:
        """Mark the blob suspect when its read fails, and name a body cut short for what it was: the server
        cuts a corrupted blob's body short, then moves the blob aside, so a blob now missing was corrupted."""
        try:
            yield
        except IntegrityError:
            self._suspect.add(sha256)
            raise
        except StoreUnavailable as exc:
            self._suspect.add(sha256)
            try:
                moved = not self.exists(sha256)
            except StoreUnavailable:
                raise exc from None
            if moved:
                raise IntegrityError(
                    f"artifact {sha256} on keel server {self.url} failed its hash check; the server moved it aside"
                    " (a put of its bytes restores it)"
                ) from None
            raise

    def get_bytes(self, sha256: str) -> bytes:
        with self._reading(sha256):
            # a body cut short is a StoreUnavailable, not resent: the server cuts a corrupted blob short
            data: bytes = self._request("GET", sha256, resend=False).content
            check_digest(sha256, hashlib.sha256(data).hexdigest(), self.url)
        return data

    def download(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Stream the blob to ``dest`` through sha256: a ``.part`` file renamed only once verified."""
        check_sha256(sha256)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with self._reading(sha256):
                self._stream_to(sha256, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def _stream_to(self, sha256: str, tmp: Path) -> None:
        with self.transport.stream("GET", f"{API}/artifacts/{sha256}") as response, open(tmp, "wb") as out:
            for chunk in verified_chunks(sha256, response.iter_bytes(CHUNK), self.url):
                out.write(chunk)

    def close(self) -> None:
        self.transport.close()
