"""Blobs in a local folder or any fsspec filesystem, at ``<root>/sha256/<ab>/<sha256>``.

Local writes go to a temporary file renamed into place (atomic); object stores such as
S3 publish an object only once it is complete, so a blob is never seen half-written.

A put skips the write only when the stored blob is intact, so putting the right bytes repairs
a corrupted blob. Intact means: same size, and then the same hash. Locally that is a stat and,
when the sizes match, one read of the stored file (disk corruption changes no timestamp, so
nothing cheaper can be trusted). On object stores the read is a download, so an object this
store has verified or written is remembered with its ETag, which any overwrite changes: a
repeated put of the same content costs one HEAD.

A read (``get_bytes``, ``iter_bytes``, ``download``) that finds a blob failing its hash moves
it aside, to ``<root>/corrupt/<sha256>.<ms>`` (kept, never deleted: it is evidence), so the
blob reads as missing: ``exists()`` is False, a keel server answers its HEAD with 404, and the
next put of the right bytes, from any process, stores it again. It is moved only if it is still
the object that was read (same inode and mtime locally, same ETag remotely): a blob repaired
meanwhile stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.core.errors import IntegrityError, KeelError, MissingExtra, NotFound, StoreUnavailable
from keel.core.validation import check_sha256
from keel.store.artifacts.base import CHUNK, ArtifactStore, BlobInfo, check_digest, hash_file, verified_chunks

log = logging.getLogger("keel.store")
_VERIFIED_MAX = 10_000  # remembered object ETags, per store: a few MB at most
_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}


class FsspecArtifactStore(ArtifactStore):
    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        self._verified: dict[str, tuple[int, str]] = {}  # sha256 -> (size, ETag) of objects known to be intact
        self._verified_lock = threading.Lock()
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
        if self._intact(info) and self._renewed(info.sha256):
            return info
        if self.local:
            self._atomic_write(info.sha256, lambda fh: fh.write(data))
        else:
            self._call(self.fs.pipe_file, self._remote(info.sha256), data)
            self._remember(info)
        return info

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        info = hash_file(path)
        if self._intact(info) and self._renewed(info.sha256):
            return info
        if self.local:

            def copy(fh: Any) -> None:
                with open(path, "rb") as src:
                    while chunk := src.read(CHUNK):
                        fh.write(chunk)

            self._atomic_write(info.sha256, copy)
        else:
            self._call(self.fs.put_file, os.fspath(path), self._remote(info.sha256))
            self._remember(info)
        return info

    def _intact(self, info: BlobInfo) -> bool:
        """Whether the stored blob named ``info.sha256`` holds that content (a put may then skip its write)."""
        stamp = self._stamp(info.sha256)
        if stamp is None or stamp[0] != info.size:
            return False  # missing, or truncated/extended: no need to read it
        with self._verified_lock:
            if self._verified.get(info.sha256) == stamp:
                return True
        if self._stored_digest(info.sha256) != info.sha256:
            return False
        self._remember(info, stamp)
        return True

    def _renewed(self, sha256: str) -> bool:
        """Renew a local blob's change time (ctime; its content's time, mtime, stays) before a put skips writing it:
        ``keel gc`` removes only blobs written or renewed before it started, so a blob someone is about to reference
        again survives a gc running now. False: it was removed meanwhile (write it again)."""
        if self.local:
            path = self._path(sha256)
            try:
                os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))  # the kernel sets ctime to now
            except FileNotFoundError:
                return False
            except OSError:
                pass  # a read-only folder: nothing to renew, and nothing a gc could remove either
        return True

    def _stamp(self, sha256: str) -> tuple[int, str] | None:
        """(size, ETag) of the stored blob ("" when there is no ETag, as for local files); None if there is none."""
        try:
            if self.local:
                return self._path(sha256).stat().st_size, ""
            meta = self._call(self.fs.info, self._remote(sha256))
        except FileNotFoundError:
            return None
        etag = meta.get("ETag") or meta.get("etag") or meta.get("md5Hash") or ""
        version = meta.get("generation") or meta.get("VersionId") or ""
        return int(meta.get("size") or 0), f"{etag}|{version}" if etag else ""

    def _stored_digest(self, sha256: str) -> str | None:
        digest = hashlib.sha256()
        try:
            opener = open(self._path(sha256), "rb") if self.local else self._call(self.fs.open, self._remote(sha256), "rb")
            with opener as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def _remember(self, info: BlobInfo, stamp: tuple[int, str] | None = None) -> None:
        """Remember an object store blob as intact under its current ETag; local blobs and ETag-less objects are re-read."""
        stamp = stamp or self._stamp(info.sha256)
        if stamp is None or not stamp[1]:
            return
        with self._verified_lock:
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.pop(next(iter(self._verified)))
            self._verified[info.sha256] = stamp

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
        src, identity, where = self._open(sha256)
        with src:
            data = src.read()
        with self._quarantine_on_mismatch(sha256, identity):
            check_digest(sha256, hashlib.sha256(data).hexdigest(), where)
        return bytes(data)

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        """The blob in chunks of ``CHUNK`` bytes, hashed as they go (see ``ArtifactStore.iter_bytes``)."""
        src, identity, where = self._open(sha256)

        def chunks() -> Iterator[bytes]:
            with src:
                while chunk := src.read(CHUNK):
                    yield chunk

        def checked() -> Iterator[bytes]:
            with self._quarantine_on_mismatch(sha256, identity):
                yield from verified_chunks(sha256, chunks(), where)

        return checked()

    def download(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        digest = hashlib.sha256()
        src, identity, _ = self._open(sha256)
        try:
            with src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            with self._quarantine_on_mismatch(sha256, identity):
                check_digest(sha256, digest.hexdigest(), self.url)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def _open(self, sha256: str) -> tuple[Any, Any, str]:
        """(open file, identity of what was opened, where it is) of a blob; ``NotFound`` if there is none."""
        try:
            if self.local:
                path = self._path(sha256)
                src: Any = open(path, "rb")
                st = os.fstat(src.fileno())
                return src, (st.st_ino, st.st_mtime_ns, st.st_size), str(path)
            where = self._remote(sha256)
            identity = self._stamp(sha256)  # taken first: the object read is this one or a newer one
            if identity is None:
                raise FileNotFoundError(where)
            return self._call(self.fs.open, where, "rb"), identity, where
        except FileNotFoundError:
            raise NotFound(f"artifact {sha256} is not in {self.url}") from None

    def _identity(self, sha256: str) -> Any:
        if self.local:
            try:
                st = self._path(sha256).stat()
            except FileNotFoundError:
                return None
            return st.st_ino, st.st_mtime_ns, st.st_size
        return self._stamp(sha256)

    @contextlib.contextmanager
    def _quarantine_on_mismatch(self, sha256: str, identity: Any) -> Iterator[None]:
        try:
            yield
        except IntegrityError:
            self._quarantine(sha256, identity)
            raise

    def _quarantine(self, sha256: str, identity: Any) -> None:
        """Move a blob that failed its hash to ``corrupt/``, unless it changed since it was read (a repair)."""
        with self._verified_lock:
            self._verified.pop(sha256, None)
        name = f"corrupt/{sha256}.{time.time_ns() // 1_000_000}"
        try:
            if identity is None or self._identity(sha256) != identity:
                return
            if self.local:
                (self.root / "corrupt").mkdir(exist_ok=True)
                os.replace(self._path(sha256), self.root / name)
            else:
                self._call(self.fs.mv, self._remote(sha256), f"{self.root_path.rstrip('/')}/{name}")
        except (OSError, KeelError) as exc:  # the read still fails loudly; a put still checks the hash before skipping
            log.warning("keel: could not move corrupted artifact %s aside: %s", sha256, exc)
            return
        log.error("keel: artifact %s failed its hash check and was moved to %s; a put of its bytes restores it", sha256, name)

    @staticmethod
    def _call(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreUnavailable(f"artifact store error: {exc}") from None
