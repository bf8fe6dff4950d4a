"""Artifacts proxied by a keel server (``PUT/GET /api/v1/artifacts/{sha256}``); the server verifies uploads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from keel.core.errors import NotFound, StoreUnavailable, error_from_dict
from keel.core.validation import check_sha256
from keel.store.artifacts.base import CHUNK, ArtifactStore, BlobInfo, check_digest, hash_file


class HttpArtifactStore(ArtifactStore):
    def __init__(self, url: str, *, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout, headers=headers or {})
        self._httpx = httpx

    def _request(self, method: str, sha256: str, **kwargs: Any) -> Any:
        check_sha256(sha256)
        try:
            response = self._client.request(method, f"/api/v1/artifacts/{sha256}", **kwargs)
        except self._httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach keel server {self.url}: {exc}") from None
        if response.status_code == 404:
            raise NotFound(f"artifact {sha256} is not on {self.url}")
        if response.status_code >= 400:
            try:
                payload = response.json().get("error", {})
            except ValueError:
                payload = {}
            raise error_from_dict(payload, response.status_code)
        return response

    def exists(self, sha256: str) -> bool:
        try:
            self._request("HEAD", sha256)
        except NotFound:
            return False
        return True

    def put_bytes(self, data: bytes) -> BlobInfo:
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if not self.exists(info.sha256):
            self._request("PUT", info.sha256, content=data)
        return info

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        info = hash_file(path)
        if not self.exists(info.sha256):

            def chunks() -> Any:
                with open(path, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield chunk

            self._request("PUT", info.sha256, content=chunks())
        return info

    def get_bytes(self, sha256: str) -> bytes:
        data: bytes = self._request("GET", sha256).content
        check_digest(sha256, hashlib.sha256(data).hexdigest(), self.url)
        return data

    def download(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = self.get_bytes(sha256)
        tmp = dest.with_name(f".{dest.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        return dest

    def close(self) -> None:
        self._client.close()
