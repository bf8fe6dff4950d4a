"""Artifact references of runs on the SQL backend (the blobs are in the artifact store; here their hashes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.entities import ArtifactRef
from keel.store.metadata.sql import schema as t
from keel.store.metadata.sql.audit import append_event
from keel.store.metadata.sql.database import Database, by_dialect
from keel.store.metadata.sql.runs import RunKeys, check_writable, require_run

_insert_blobs_by_dialect = by_dialect(lambda insert: insert(t.artifacts).on_conflict_do_nothing(index_elements=["sha256"]))


def _upsert_paths(insert: Any) -> Any:
    stmt = insert(t.run_artifacts)
    return stmt.on_conflict_do_update(index_elements=["run_id", "path"], set_={"sha256": stmt.excluded.sha256})


_upsert_paths_by_dialect = by_dialect(_upsert_paths)
_ra = t.run_artifacts.c
_of_run = (
    select(_ra.path, t.artifacts.c.sha256, t.artifacts.c.size, t.artifacts.c.media_type)
    .join(t.artifacts, t.artifacts.c.sha256 == _ra.sha256)
    .where(_ra.run_id == bindparam("run_id"))
    .order_by(_ra.path)
)


class SqlRunArtifactStore:
    def __init__(self, db: Database, keys: RunKeys) -> None:
        self.db = db
        self.keys = keys
        self._insert_blobs = db.pick(_insert_blobs_by_dialect)
        self._upsert_paths = db.pick(_upsert_paths_by_dialect)

    def log(self, run_id: str, refs: Sequence[ArtifactRef]) -> None:
        if not refs:
            return
        for ref in refs:
            v.check_artifact_path(ref.path)
            v.check_sha256(ref.sha256)
            v.check_count(ref.size, "artifact size")
        created = now_ms()
        with self.db.transaction() as conn:
            check_writable(conn, [run_id])  # exists and is not deleted
            blobs = {r.sha256: r for r in refs}
            conn.execute(
                self._insert_blobs,
                [{"sha256": r.sha256, "size": r.size, "media_type": r.media_type, "created_at": created} for r in blobs.values()],
            )
            conn.execute(self._upsert_paths, [{"run_id": run_id, "path": r.path, "sha256": r.sha256} for r in refs])
            # which bytes each path names: re-pointing a run's model.pkl is a change worth a record
            append_event(conn, "runs.log_artifacts", "run", run_id, None, {r.path: r.sha256 for r in refs})

    def list_refs(self, run_id: str) -> list[ArtifactRef]:
        with self.db.transaction(write=False) as conn:
            require_run(conn, run_id)
            rows = conn.execute(_of_run, {"run_id": run_id}).all()
            return [ArtifactRef(path=p, sha256=s, size=z, media_type=m) for p, s, z, m in rows]
