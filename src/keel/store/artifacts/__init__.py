"""Content-addressed artifact stores: blobs named by their sha256, verified on every read.

>>> store = open_artifact_store(".keel/artifacts")        # doctest: +SKIP
>>> sha = store.put_bytes(b"hello").sha256                  # doctest: +SKIP
"""

from __future__ import annotations

from keel.store.artifacts.base import ArtifactStore, BlobInfo


def open_artifact_store(url: str, **options: object) -> ArtifactStore:
    """A local folder, any fsspec URL (``s3://bucket/prefix`` with ``keel[s3]``), or a keel server (``http://``)."""
    if url.startswith(("http://", "https://")):
        from keel.store.artifacts.http import HttpArtifactStore

        return HttpArtifactStore(url, **options)  # type: ignore[arg-type]
    from keel.store.artifacts.fsspec_store import FsspecArtifactStore

    return FsspecArtifactStore(url, **options)


__all__ = ["ArtifactStore", "BlobInfo", "open_artifact_store"]
