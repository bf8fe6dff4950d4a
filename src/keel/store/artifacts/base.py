"""The artifact store interface.

Contract: blobs are immutable and named by the sha256 of their content; putting the
same content twice stores it once; every read hashes what it returns and raises
``IntegrityError`` instead of returning bytes that do not match their name;
``NotFound`` for a missing blob; thread safe.
"""

from __future__ import annotations

import abc
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from keel.core.errors import IntegrityError

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    size: int


def hash_file(path: str | os.PathLike[str]) -> BlobInfo:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return BlobInfo(digest.hexdigest(), size)


def check_digest(sha256: str, actual: str, where: str) -> None:
    """Raise ``IntegrityError`` unless the content read hashed to the blob's name."""
    if actual != sha256:
        raise IntegrityError(f"artifact {sha256} at {where} is corrupted or was tampered with: its content hashes to {actual}")


class ArtifactStore(abc.ABC):
    url: str

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> BlobInfo: ...

    @abc.abstractmethod
    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo: ...

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    def get_bytes(self, sha256: str) -> bytes:
        """The blob's bytes, verified against its hash."""

    @abc.abstractmethod
    def download(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Write the blob to ``dest`` (verified; nothing is left at ``dest`` on a mismatch)."""

    def iter_bytes(self, sha256: str) -> Iterator[bytes]:
        """The blob in chunks, for streaming it without holding it in memory.

        ``NotFound`` is raised by this call, before any chunk; the chunks are hashed as they go
        and ``IntegrityError`` is raised after the last one if they do not match the name, so a
        consumer must not treat what it received as valid until the iterator is exhausted.
        Backends override this to read in chunks; this default holds the blob in memory.
        """
        return iter((self.get_bytes(sha256),))


def verified_chunks(sha256: str, chunks: Iterable[bytes], where: str) -> Iterator[bytes]:
    """Yield ``chunks`` while hashing them; raise ``IntegrityError`` after the last one on a mismatch."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
    check_digest(sha256, digest.hexdigest(), where)
