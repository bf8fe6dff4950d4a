"""What the run page shows of an artifact: an image, a sandboxed frame, the first rows of a table, or the first
64 KB of a text; and the headers the artifact route serves each kind with.

Everything an artifact holds is the user's: text is escaped by the templates, and what the browser renders itself
(HTML reports, SVG) is served under ``Content-Security-Policy: sandbox`` without ``allow-scripts``, so it runs in an
opaque origin with no script: it can neither read the UI's cookie nor call the UI as the signed-in user. keel's own
reports (``study.html``, data and monitor reports) have no script, so nothing is lost.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from keel.core.entities import ArtifactRef
from keel.store.artifacts.base import ArtifactStore

__all__ = ["ARTIFACT_CSP", "Preview", "kind", "preview", "response_headers"]

TEXT_BYTES = 64 * 1024
TABLE_ROWS = 50
MAX_PREVIEWS = 20  # the first artifacts of a run with hundreds are previewed; the others are listed

# no script at all, an opaque origin; images and styles of the document itself only; may be framed by the UI alone
ARTIFACT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
           ".svg": "image/svg+xml"}  # fmt: skip
_TEXT_TYPES = {"application/json": "json", "application/yaml": "text", "application/x-yaml": "text", "application/xml": "text"}
_TEXT_SUFFIXES = {".txt", ".log", ".json", ".yaml", ".yml", ".csv", ".tsv", ".md", ".py", ".toml", ".cfg", ".ini", ".xml"}


@dataclass(frozen=True, slots=True)
class Preview:
    """One artifact as the page shows it: ``kind`` is image, html, table, text or file (a link only)."""

    ref: ArtifactRef
    kind: str
    text: str | None = None
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    message: str | None = None


def _media(ref: ArtifactRef) -> str:
    return ref.media_type.split(";")[0].strip().lower()


def kind(ref: ArtifactRef) -> str:
    """image, html, table, text or file: by media type first, then by the name's suffix."""
    media, suffix = _media(ref), PurePosixPath(ref.path).suffix.lower()
    if media in _IMAGES.values() or suffix in _IMAGES:
        return "image"
    if media == "text/html" or suffix in (".html", ".htm"):
        return "html"
    if media == "application/vnd.apache.parquet" or suffix == ".parquet":
        return "table"
    if media.startswith("text/") or media in _TEXT_TYPES or suffix in _TEXT_SUFFIXES:
        return "text"
    return "file"


def response_headers(ref: ArtifactRef) -> dict[str, str]:
    """The content type and headers the artifact route answers with: images and HTML as themselves, text as
    plain text, anything else as a download; all sandboxed, never sniffed."""
    what = kind(ref)
    headers = {"content-security-policy": ARTIFACT_CSP, "x-content-type-options": "nosniff", "cache-control": "private, no-cache",
               "referrer-policy": "same-origin"}  # fmt: skip
    if what == "image":
        media = _media(ref)
        headers["content-type"] = media if media in _IMAGES.values() else _IMAGES[PurePosixPath(ref.path).suffix.lower()]
    elif what == "html":
        headers["content-type"] = "text/html; charset=utf-8"
    elif what == "text":
        headers["content-type"] = "text/plain; charset=utf-8"
    else:
        headers["content-type"] = "application/octet-stream"
        name = PurePosixPath(ref.path).name.replace('"', "").replace("\\", "")
        headers["content-disposition"] = f'attachment; filename="{name.encode("ascii", "replace").decode()}"'
    return headers


def _head(artifacts: ArtifactStore, sha256: str, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of a blob (without reading the rest), and whether there was more."""
    out = bytearray()
    for chunk in artifacts.iter_bytes(sha256):
        out += chunk
        if len(out) > limit:
            return bytes(out[:limit]), True
    return bytes(out), False


def _table(artifacts: ArtifactStore, ref: ArtifactRef) -> Preview:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return Preview(ref, "table", message="previewing tables needs pyarrow: pip install 'keel[data]'")
    try:
        parquet = pq.ParquetFile(io.BytesIO(artifacts.get_bytes(ref.sha256)))
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
    except Exception as exc:  # noqa: BLE001 - a broken file is shown as such, the page still answers
        return Preview(ref, "table", message=f"not a readable Parquet file: {type(exc).__name__}")
    columns = list(parquet.schema_arrow.names)
    rows = [[row.get(c) for c in columns] for row in batch.to_pylist()] if batch is not None else []
    total = parquet.metadata.num_rows
    return Preview(ref, "table", columns=columns, rows=rows, truncated=total > len(rows),
                   message=f"first {len(rows)} of {total:,} rows" if total > len(rows) else None)  # fmt: skip


def preview(artifacts: ArtifactStore, ref: ArtifactRef) -> Preview:
    """What the page shows of ``ref``: images and HTML by URL (the browser fetches them), the rest read here."""
    what = kind(ref)
    if what == "table":
        return _table(artifacts, ref)
    if what == "text":
        data, more = _head(artifacts, ref.sha256, TEXT_BYTES)
        return Preview(ref, "text", text=data.decode("utf-8", errors="replace"), truncated=more)
    return Preview(ref, what)
