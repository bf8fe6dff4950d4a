"""Blobs in a local folder or any fsspec filesystem, at ``<root>/sha256/<ab>/<sha256>``.

Local writes go to a temporary file renamed into place (atomic); object stores such as
S3 publish an object only once it is complete, so a blob is never seen half-written.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from keel.core.errors import MissingExtra, NotFound, StoreUnavailable
from keel.core.validation import check_sha256
from keel.store.artifacts.base import CHUNK, ArtifactStore, BlobInfo, check_digest, hash_file

_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}


class FsspecArtifactStore(ArtifactStore):
    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        scheme = url.split("://", 1)[0] if "://" in url else "file"
        self.local = scheme in ("file", "local")
        if self.local:
            self.root = Path(url.split("://", 1)[1] if "://" in url else url).expanduser().resolve()
            self.fs: Any = None
        else:
            try:
                import fsspec

                self.fs, self.root_path = fsspec.core.url_to_fs(url, **storage_options)
            except ImportError as exc:
                module, extra = _EXTRAS.get(scheme, (str(exc.name), scheme))
                raise MissingExtra(module, extra) from None

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.url!r})"

    def _key(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"sha256/{sha256[:2]}/{sha256}"

    def _path(self, sha256: str) -> Path:
        return self.root / self._key(sha256)

    def _remote(self, sha256: str) -> str:
        return f"{self.root_path.rstrip('/')}/{self._key(sha256)}"

    def exists(self, sha256: str) -> bool:
        if self.local:
            return self._path(sha256).is_file()
        return bool(self._call(self.fs.exists, self._remote(sha256)))

    def put_bytes(self, data: bytes) -> BlobInfo:
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if self.exists(info.sha256):
            return info
        if self.local:
            self._atomic_write(info.sha256, lambda fh: fh.write(data))
        else:
            self._call(self.fs.pipe_file, self._remote(info.sha256), data)
        return info

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        info = hash_file(path)
        if self.exists(info.sha256):
            return info
        if self.local:

            def copy(fh: Any) -> None:
                with open(path, "rb") as src:
                    while chunk := src.read(CHUNK):
                        fh.write(chunk)

            self._atomic_write(info.sha256, copy)
        else:
            self._call(self.fs.put_file, os.fspath(path), self._remote(info.sha256))
        return info

    def _atomic_write(self, sha256: str, write: Any) -> None:
        target = self._path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, sha256: str) -> bytes:
        if self.local:
            path = self._path(sha256)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise NotFound(f"artifact {sha256} is not in {self.url}") from None
            where = str(path)
        else:
            where = self._remote(sha256)
            if not self.exists(sha256):
                raise NotFound(f"artifact {sha256} is not in {self.url}")
            data = self._call(self.fs.cat_file, where)
        check_digest(sha256, hashlib.sha256(data).hexdigest(), where)
        return bytes(data)

    def download(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        digest = hashlib.sha256()
        try:
            opener = open(self._path(sha256), "rb") if self.local else self._call(self.fs.open, self._remote(sha256), "rb")
        except FileNotFoundError:
            raise NotFound(f"artifact {sha256} is not in {self.url}") from None
        try:
            with opener as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            check_digest(sha256, digest.hexdigest(), self.url)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    @staticmethod
    def _call(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreUnavailable(f"artifact store error: {exc}") from None
