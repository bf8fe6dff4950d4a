"""``SqlPipelineStore``: the step cache on the ``SqlStore``'s database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from keel.core import validation as v
from keel.core.clock import now_ms
from keel.core.errors import InvalidArgument
from keel.store.metadata.pipelines import CachedStep, PipelineStore
from keel.store.metadata.sql import schema as t

if TYPE_CHECKING:
    from keel.store.metadata.sql.store import SqlStore

_find = select(t.step_cache).where(t.step_cache.c.cache_key == bindparam("key"))


class SqlPipelineStore(PipelineStore):
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def save_step(self, cache_key: str, run_id: str, step: str, outputs: dict[str, Any]) -> None:
        v.check_sha256(cache_key)
        if not isinstance(outputs, dict):
            raise InvalidArgument.for_field("outputs", outputs, "a mapping")
        row = {"cache_key": cache_key, "run_id": run_id, "step": step, "outputs": json.dumps(outputs), "created_at": now_ms()}
        with self._store._tx() as conn:
            self._store._require_known_run(conn, run_id)
            stmt = self._store._insert(t.step_cache)
            update = {k: stmt.excluded[k] for k in ("run_id", "step", "outputs", "created_at")}
            conn.execute(stmt.on_conflict_do_update(index_elements=["cache_key"], set_=update), row)

    def find_step(self, cache_key: str) -> CachedStep | None:
        with self._store._tx(write=False) as conn:
            row = conn.execute(_find, {"key": cache_key}).first()
        if row is None:
            return None
        return CachedStep(row.cache_key, row.run_id, row.step, json.loads(row.outputs), row.created_at)
